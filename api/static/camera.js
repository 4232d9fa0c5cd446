// The document camera (高拍仪) on the case page: a UVC camera read with getUserMedia. A still is
// taken into a canvas, turned by quarter turns and cropped at its edges, then handed to the
// material's own upload form as a JPEG file — the same POST (and one-time form token) as a file
// chosen from disk, so the server checks it the same way.
(function () {
  "use strict";
  var dialog = document.getElementById("camera");
  if (!dialog || !navigator.mediaDevices) { return; }
  var video = document.getElementById("camera-video");
  var canvas = document.getElementById("camera-canvas");
  var crop = document.getElementById("camera-crop");
  var still = null, turns = 0, stream = null, form = null, name = "";

  function stop() {
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); }
    stream = null;
  }
  function draw() {
    if (!still) { return; }
    var cut = Number(crop.value) / 100;
    var sx = Math.round(still.width * cut), sy = Math.round(still.height * cut);
    var w = still.width - 2 * sx, h = still.height - 2 * sy;
    var sideways = turns % 2 === 1;
    canvas.width = sideways ? h : w;
    canvas.height = sideways ? w : h;
    var ctx = canvas.getContext("2d");
    ctx.save();
    ctx.translate(canvas.width / 2, canvas.height / 2);
    ctx.rotate(turns * Math.PI / 2);
    ctx.drawImage(still, sx, sy, w, h, -w / 2, -h / 2, w, h);
    ctx.restore();
    document.getElementById("camera-crop-value").textContent = crop.value;
  }
  document.querySelectorAll("button.camera-open").forEach(function (button) {
    button.addEventListener("click", function () {
      form = button.closest("form");
      name = button.getAttribute("data-name") || "";
      document.getElementById("camera-material").textContent = name;
      still = null; turns = 0; crop.value = 0;
      ["camera-rotate", "camera-crop", "camera-use"].forEach(function (id) { document.getElementById(id).disabled = true; });
      dialog.showModal();
      navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1920 }, height: { ideal: 1080 } }, audio: false })
        .then(function (s) { stream = s; video.srcObject = s; document.getElementById("camera-error").hidden = true; })
        .catch(function () { document.getElementById("camera-error").hidden = false; });
    });
  });
  document.getElementById("camera-shoot").addEventListener("click", function () {
    if (!video.videoWidth) { return; }
    still = document.createElement("canvas");
    still.width = video.videoWidth;
    still.height = video.videoHeight;
    still.getContext("2d").drawImage(video, 0, 0);
    ["camera-rotate", "camera-crop", "camera-use"].forEach(function (id) { document.getElementById(id).disabled = false; });
    draw();
  });
  document.getElementById("camera-rotate").addEventListener("click", function () { turns = (turns + 1) % 4; draw(); });
  crop.addEventListener("input", draw);
  document.getElementById("camera-use").addEventListener("click", function () {
    canvas.toBlob(function (blob) {
      var file = new File([blob], (name || "高拍仪") + ".jpg", { type: "image/jpeg" });
      var files = new DataTransfer();
      files.items.add(file);
      form.querySelector("input[type=file]").files = files.files;
      stop();
      dialog.close();
      form.submit();
    }, "image/jpeg", 0.92);
  });
  document.getElementById("camera-close").addEventListener("click", function () { stop(); dialog.close(); });
  dialog.addEventListener("close", stop);
})();
