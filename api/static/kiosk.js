// The self-service booth (/kiosk): one page, screens in turn, everything held in this page's
// memory only. Idle for data-idle seconds, or "返回首页", reloads /kiosk: nothing of the last
// applicant is left on screen, in storage or in the URL.
"use strict";

(() => {
  const $ = (sel) => document.querySelector(sel);
  const body = document.body;
  const idleSeconds = Number(body.dataset.idle || 60);
  let idleTimer = null;
  let stream = null; // the document camera, while the capture screen shows

  // A booth page shown inside another (the receipt's wait page in the receipt viewer's frame)
  // resets the whole booth, not just its frame.
  const framed = window.top !== window;
  if (framed) body.classList.add("framed");

  function reset() {
    stopCamera();
    (framed ? window.top : window).location.replace("/kiosk");
  }

  function touch() {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(reset, idleSeconds * 1000);
  }
  ["pointerdown", "keydown", "touchstart"].forEach((e) => document.addEventListener(e, touch, { passive: true }));
  touch();
  document.querySelectorAll("#home, [data-home]").forEach((b) => b.addEventListener("click", reset));

  // The result page: print the receipt slip (the page's print layout).
  const printButton = $("#print");
  if (printButton) printButton.addEventListener("click", () => window.print());
  if (!$("#s-start")) return;

  const state = { item: null, guide: null, answers: {}, materials: [], index: 0, shots: {} };

  function show(id) {
    document.querySelectorAll(".screen").forEach((s) => s.classList.toggle("active", s.id === id));
    window.scrollTo(0, 0);
    if (id === "s-capture") startCamera(); else stopCamera();
  }

  // -- identify: a card reader fills name and ID number; the built-in reader is keyboard entry --
  // A reader driver plugs in by calling window.tongbanKiosk.card({name, id_number}) (for example
  // from a native bridge or a USB reader's helper page); with none, the fields are typed in: the
  // name by the keyboard (or a keyboard-wedge reader), the numbers on the keypad.
  const READERS = {
    keyboard: { label: "键盘录入", start() {}, stop() {} },
  };
  const reader = READERS.keyboard;
  window.tongbanKiosk = {
    card(data) {
      if (data.name) $("#name").value = String(data.name).slice(0, 100);
      if (data.id_number) $("#id-number").value = String(data.id_number).toUpperCase().slice(0, 18);
      $("#reader-status").textContent = "已读取身份证, 请核对并填写手机号码。";
    },
  };

  let target = $("#id-number");
  document.querySelectorAll("[data-keypad]").forEach((input) => {
    input.addEventListener("focus", () => { target = input; mark(); });
    input.addEventListener("pointerdown", () => { target = input; mark(); });
  });
  function mark() {
    document.querySelectorAll("[data-keypad]").forEach((i) => i.classList.toggle("typing", i === target));
  }
  mark();
  document.querySelectorAll("#keypad [data-key]").forEach((key) => key.addEventListener("click", () => {
    const k = key.dataset.key;
    if (k === "back") target.value = target.value.slice(0, -1);
    else if (k === "X" && target.dataset.keypad !== "id") return;
    else if (target.value.length < Number(target.maxLength)) target.value += k;
  }));

  $("#start").addEventListener("click", () => { reader.start(); show("s-identify"); });
  $("#to-items").addEventListener("click", () => {
    const name = $("#name").value.trim(), id = $("#id-number").value, phone = $("#phone").value;
    const error = !name ? "请填写姓名" : id.length !== 18 ? "身份证号须为 18 位" :
      !/^1[0-9]{10}$/.test(phone) ? "请输入 11 位手机号码" : "";
    $("#identify-error").textContent = error;
    if (!error) { reader.stop(); show("s-items"); }
  });

  // -- find an item: the booth's tiles, or pinyin initials through the guide search ------------
  let q = "";
  document.querySelectorAll("#letters [data-letter]").forEach((key) => key.addEventListener("click", () => {
    q = key.dataset.letter === "back" ? q.slice(0, -1) : (q + key.dataset.letter).slice(0, 12);
    $("#q").textContent = q;
  }));
  const offered = new Set([...document.querySelectorAll("#tiles .tile")].map((t) => t.dataset.code));
  $("#search").addEventListener("click", async () => {
    const results = $("#results");
    results.replaceChildren();
    if (!q) return;
    const r = await fetch(`/api/v1/guide/search?q=${encodeURIComponent(q.toLowerCase())}&limit=8`);
    const found = r.ok ? (await r.json()).results.filter((x) => offered.has(x.item_code)) : [];
    if (!found.length) {
      const p = document.createElement("p");
      p.className = "hint";
      p.textContent = "本终端没有找到相关事项, 请换个字母或到窗口咨询。";
      results.append(p);
    }
    for (const x of found) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "tile result";
      b.dataset.code = x.item_code;
      b.textContent = x.name;
      b.addEventListener("click", () => pick(x.item_code));
      results.append(b);
    }
  });
  document.querySelectorAll("#tiles .tile").forEach((t) => t.addEventListener("click", () => pick(t.dataset.code)));

  async function guideOf(code, answers) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(answers || {})) params.append("situation", `${k}:${v}`);
    const r = await fetch(`/api/v1/guide/${encodeURIComponent(code)}${answers ? "?" + params : ""}`);
    if (!r.ok) throw new Error("guide");
    return r.json();
  }

  async function pick(code) {
    state.item = code;
    state.answers = {};
    state.guide = await guideOf(code);
    $("#item-title").textContent = `第三步 · ${state.guide.name}: 您的情形`;
    const box = $("#questions");
    box.replaceChildren();
    for (const s of state.guide.situations) {
      const fs = document.createElement("fieldset");
      const legend = document.createElement("legend");
      legend.textContent = s.question;
      fs.append(legend);
      for (const o of s.options) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "option";
        b.textContent = o.label;
        b.addEventListener("click", () => {
          state.answers[s.id] = o.id;
          fs.querySelectorAll(".option").forEach((x) => x.classList.toggle("chosen", x === b));
          $("#to-capture").disabled = Object.keys(state.answers).length < state.guide.situations.length;
        });
        fs.append(b);
      }
      box.append(fs);
    }
    $("#to-capture").disabled = state.guide.situations.length > 0;
    if (!state.guide.situations.length) return toCapture();
    show("s-situations");
  }

  // -- capture each material with the booth's document camera -----------------------------
  async function toCapture() {
    const exact = await guideOf(state.item, state.answers);
    state.materials = exact.materials.filter((m) => !m.from_library);
    state.index = 0;
    state.shots = {};
    showMaterial();
    show("s-capture");
  }
  $("#to-capture").addEventListener("click", toCapture);

  async function startCamera() {
    if (stream) return;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 960 }, audio: false });
      const video = $("#camera");
      video.addEventListener("loadedmetadata", () => {
        video.dataset.ready = "1";
        $("#shoot").disabled = false;
      }, { once: true });
      video.srcObject = stream;
      $("#camera-error").textContent = "";
    } catch (e) {
      $("#camera-error").textContent = "高拍仪未就绪, 请联系工作人员。";
    }
  }
  function stopCamera() {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    const video = $("#camera");
    if (video) { video.srcObject = null; delete video.dataset.ready; }
    const shoot = $("#shoot");
    if (shoot) shoot.disabled = true;
  }

  function showMaterial() {
    const m = state.materials[state.index];
    $("#cap-name").textContent = m.name;
    $("#cap-step").textContent = `第 ${state.index + 1} / ${state.materials.length} 项${m.required ? "" : " (非必需, 可跳过)"}`;
    const thumbs = $("#cap-thumbs");
    thumbs.replaceChildren();
    for (const blob of state.shots[m.id] || []) {
      const img = document.createElement("img");
      img.src = URL.createObjectURL(blob);
      img.alt = `${m.name} 第 ${thumbs.children.length + 1} 页`;
      thumbs.append(img);
    }
    const last = state.index === state.materials.length - 1;
    $("#cap-next").textContent = last ? "完成拍摄" : "下一项";
    $("#cap-next").disabled = m.required && !(state.shots[m.id] || []).length;
  }

  $("#shoot").addEventListener("click", () => {
    const video = $("#camera");
    if (!video.videoWidth) return;
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    canvas.toBlob((blob) => {
      const m = state.materials[state.index];
      (state.shots[m.id] = state.shots[m.id] || []).push(blob);
      showMaterial();
    }, "image/jpeg", 0.85);
  });
  $("#reshoot").addEventListener("click", () => {
    delete state.shots[state.materials[state.index].id];
    showMaterial();
  });
  $("#cap-next").addEventListener("click", () => {
    if (state.index < state.materials.length - 1) {
      state.index += 1;
      showMaterial();
    } else {
      summary();
      show("s-confirm");
    }
  });

  // -- confirm and submit --------------------------------------------------------------------
  function summary() {
    const box = $("#summary");
    box.replaceChildren();
    const id = $("#id-number").value;
    const rows = [["办理事项", state.guide.name], ["申请人", $("#name").value.trim()],
      ["身份证号", id.slice(0, 4) + "**********" + id.slice(-4)], ["手机号码", $("#phone").value.replace(/^(\d{3})\d{4}/, "$1****")],
      ...state.materials.map((m) => [m.name, `${(state.shots[m.id] || []).length} 页`])];
    for (const [label, value] of rows) {
      const row = $("#summary-row").content.cloneNode(true);
      row.querySelector(".label").textContent = label;
      row.querySelector(".value").textContent = value;
      box.append(row);
    }
  }

  let sending = false;
  $("#submit").addEventListener("click", async () => {
    if (sending) return;
    sending = true;
    $("#submit").disabled = true;
    $("#submit-error").textContent = "";
    const form = new FormData();
    form.append("csrf", body.dataset.csrf);
    form.append("form_token", body.dataset.token);
    form.append("item", state.item);
    form.append("name", $("#name").value.trim());
    form.append("id_number", $("#id-number").value);
    form.append("phone", $("#phone").value);
    for (const [k, v] of Object.entries(state.answers)) form.append("situation", `${k}:${v}`);
    for (const m of state.materials) {
      (state.shots[m.id] || []).forEach((blob, i) => {
        form.append("material", m.id);
        form.append("captures", blob, `${m.id}-${i + 1}.jpg`);
      });
    }
    try {
      const r = await fetch("/kiosk/cases", { method: "POST", body: form, credentials: "same-origin" });
      if (r.ok && r.redirected) {
        window.location.replace(r.url);
        return;
      }
      // RFC 9457 problem details: the first error's reason names what to fix.
      const problem = await r.json().catch(() => ({}));
      const first = (problem.errors || [])[0];
      $("#submit-error").textContent = (first && first.reason) || problem.detail || "提交失败, 请联系工作人员";
    } catch (e) {
      $("#submit-error").textContent = "网络故障, 请稍后再试或联系工作人员";
    }
    sending = false;
    $("#submit").disabled = false;
  });
})();
