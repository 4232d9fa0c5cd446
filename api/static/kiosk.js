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
    if (id === "s-identify") reader.start(); else reader.stop(); // the card reader: this screen only
  }

  // -- identify: a card reader fills name and ID number; the built-in reader is on-screen entry --
  // A reader plugs in by calling window.tongbanKiosk.card({name, id_number}): the booth's reader
  // service (data-card-reader: a vendor helper on the booth answering GET with the card on its
  // reader) is polled while this screen shows; a native bridge may call it too. With none, or
  // while the service cannot be reached, the name is entered on the pinyin keyboard and the
  // numbers on the keypad: no physical keyboard is needed.
  const status = (text) => { $("#reader-status").textContent = text; };
  const READERS = {
    screen: { label: "屏幕录入", start() {}, stop() {} },
    service: serviceReader(body.dataset.cardReader),
  };
  const reader = body.dataset.cardReader ? READERS.service : READERS.screen;
  window.tongbanKiosk = {
    card(data) {
      const id = String(data.id_number || "").toUpperCase();
      if (!/^[0-9]{17}[0-9X]$/.test(id)) return false;
      if (data.name) setName(String(data.name).slice(0, Number($("#name").maxLength)));
      $("#id-number").value = id;
      status("已读取身份证, 请核对并填写手机号码。");
      focusField($("#phone"));
      return true;
    },
  };

  function serviceReader(url) {
    let timer = null, controller = null, lastId = null, reachable = null;
    const every = 1000;
    async function poll() {
      controller = new AbortController();
      const giveUp = setTimeout(() => controller.abort(), 1500);
      try {
        const r = await fetch(url, { cache: "no-store", credentials: "omit", signal: controller.signal });
        if (timer === null) return; // stopped meanwhile
        const card = r.ok ? await r.json().catch(() => null) : null;
        if (card && card.id_number && card.id_number !== lastId && window.tongbanKiosk.card(card)) {
          lastId = card.id_number;
        } else if (!card) {
          lastId = null; // the card was taken off: the next one placed is read
          if (reachable !== true && !$("#id-number").value) status("请将居民身份证放在读卡区, 或点按下方屏幕键盘输入。");
        }
        reachable = true;
      } catch (e) {
        if (timer === null) return;
        if (reachable !== false) status("读卡器未连接, 请点按下方屏幕键盘输入姓名和身份证号。");
        reachable = false;
      } finally {
        clearTimeout(giveUp);
      }
      if (timer !== null) timer = setTimeout(poll, every);
    }
    return {
      label: "身份证读卡器",
      start() { if (timer === null) { timer = 0; poll(); } },
      stop() {
        clearTimeout(timer);
        timer = null;
        if (controller) controller.abort();
      },
    };
  }

  // The fields: tapping one shows its pad (pinyin for the name, the keypad for the numbers).
  let target = $("#name");
  function focusField(input) {
    target = input;
    document.querySelectorAll("[data-pad]").forEach((i) => i.classList.toggle("typing", i === target));
    $("#pinyin").hidden = target.dataset.pad !== "pinyin";
    $("#keypad").hidden = target.dataset.pad !== "keypad";
  }
  document.querySelectorAll("[data-pad]").forEach((input) => {
    input.addEventListener("pointerdown", () => focusField(input));
    input.addEventListener("focus", () => focusField(input));
  });
  focusField(target);
  document.querySelectorAll("#keypad [data-key]").forEach((key) => key.addEventListener("click", () => {
    const k = key.dataset.key;
    if (k === "back") target.value = target.value.slice(0, -1);
    else if (k === "clear") target.value = "";
    else if (k === "X" && target.dataset.keypad !== "id") return;
    else if (target.value.length < Number(target.maxLength)) target.value += k;
  }));

  // The pinyin keyboard: letters spell a syllable, its characters (static/kiosk-names.json,
  // made by `tongban kiosk name-table`) are offered ranked by how often names use them — as a
  // surname for the first character, in given names after it; a tap adds one to the name.
  const PAGE = 10;
  let names = null, spelling = "", shown = [], pageAt = 0;
  fetch("/static/kiosk-names.json").then((r) => r.json()).then((t) => {
    const surnameRank = new Map([...t.surnames].map((c, i) => [c, i]));
    const givenRank = new Map([...t.given].map((c, i) => [c, i]));
    const prefixes = new Set();
    for (const s of Object.keys(t.syllables)) for (let i = 1; i <= s.length; i++) prefixes.add(s.slice(0, i));
    names = { syllables: t.syllables, surnameRank, givenRank, prefixes };
    showPinyin();
  }).catch(() => { $("#pinyin-hint").textContent = "拼音键盘暂不可用, 请联系工作人员。"; });

  function candidates() {
    if (!names || !spelling) return [];
    const exact = names.syllables[spelling];
    const chars = new Set(exact ? [...exact] : Object.entries(names.syllables)
      .filter(([s]) => s.startsWith(spelling)).flatMap(([, cs]) => [...cs]));
    const first = !$("#name").value;
    const big = names.givenRank.size;
    const rank = (c) => first && names.surnameRank.has(c) ? names.surnameRank.get(c) - big : names.givenRank.get(c) ?? big;
    return [...chars].sort((a, b) => rank(a) - rank(b));
  }
  function showPinyin() {
    $("#spelling").textContent = spelling;
    const box = $("#candidates");
    box.replaceChildren();
    for (const c of shown.slice(pageAt, pageAt + PAGE)) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "key cand";
      b.dataset.char = c;
      b.textContent = c;
      b.addEventListener("click", () => {
        setName($("#name").value + c);
        spelling = "";
        shown = [];
        pageAt = 0;
        showPinyin();
      });
      box.append(b);
    }
    $("#cand-prev").disabled = pageAt === 0;
    $("#cand-next").disabled = pageAt + PAGE >= shown.length;
    document.querySelectorAll("#pinyin [data-letter]").forEach((k) => {
      k.disabled = !names || !names.prefixes.has(spelling + k.dataset.letter);
    });
  }
  function setName(value) {
    $("#name").value = value.slice(0, Number($("#name").maxLength));
  }
  function spell(next) {
    spelling = next;
    shown = candidates();
    pageAt = 0;
    showPinyin();
  }
  document.querySelectorAll("#pinyin [data-letter]").forEach((key) => key.addEventListener("click", () => {
    if (names && names.prefixes.has(spelling + key.dataset.letter)) spell(spelling + key.dataset.letter);
  }));
  $("#cand-prev").addEventListener("click", () => { pageAt = Math.max(0, pageAt - PAGE); showPinyin(); });
  $("#cand-next").addEventListener("click", () => { pageAt += PAGE; showPinyin(); });
  $("#name-dot").addEventListener("click", () => { if ($("#name").value) setName($("#name").value + "·"); });
  $("#name-back").addEventListener("click", () => {
    if (spelling) spell(spelling.slice(0, -1));
    else setName($("#name").value.slice(0, -1));
    if (!spelling) showPinyin();
  });
  $("#name-clear").addEventListener("click", () => { setName(""); spell(""); });

  $("#start").addEventListener("click", () => show("s-identify"));
  window.addEventListener("pagehide", () => reader.stop());
  $("#to-items").addEventListener("click", () => {
    const name = $("#name").value.trim(), id = $("#id-number").value, phone = $("#phone").value;
    const error = !name ? "请填写姓名" : id.length !== 18 ? "身份证号须为 18 位" :
      !/^1[0-9]{10}$/.test(phone) ? "请输入 11 位手机号码" : "";
    $("#identify-error").textContent = error;
    if (!error) show("s-items");
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
