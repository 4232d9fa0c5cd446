// 云见面 room page. Embedded backend (aiortc): one publishing connection (camera, microphone,
// data channel) and one receive-only connection per other participant, offers sent complete (no
// trickle ICE). Janus backend: janus.js publishes and subscribes through Tongban's same-origin
// proxy to Janus; the room's messages are polled from and posted to Tongban instead.
"use strict";
(function () {
  const cfg = JSON.parse(document.getElementById("room-config").textContent);
  const $ = (id) => document.getElementById(id);
  const janusMode = cfg.backend === "janus";
  const state = { key: null, me: null, pc: null, channel: null, views: {}, people: [],
                  connected: false, closed: false, files: {}, stream: null, feeds: {},
                  session: null, janus: null, stills: [] };
  window.tongbanRoom = state;

  const setStatus = (text, s) => { $("status").textContent = text; $("status").dataset.state = s; };
  const notice = (text) => { $("notice").textContent = text; };
  const roleNames = { clerk: "窗口工作人员", applicant: "申请人", approver: "远程审批人员", expert: "专家" };

  async function api(path, body) {
    const headers = { "Content-Type": "application/json" };
    if (state.key) headers["X-Participant-Key"] = state.key;
    const r = await fetch(path, { method: "POST", headers, body: JSON.stringify(body || {}) });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(data.detail || ("请求失败 " + r.status));
    return data;
  }

  function iceDone(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => { if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", check); resolve(); } };
      pc.addEventListener("icegatheringstatechange", check);
      setTimeout(resolve, 3000);  // host candidates are enough on a LAN
    });
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function apiGet(path) {
    const r = await fetch(path, { headers: { "X-Participant-Key": state.key }, cache: "no-store" });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) { const e = new Error(data.detail || ("请求失败 " + r.status)); e.status = r.status; throw e; }
    return data;
  }

  // The room's messages: over the data channel (embedded), or posted to Tongban (Janus).
  function sendMsg(m) {
    if (janusMode) {
      return api(`/api/v1/video/rooms/${cfg.room}/messages`, m)
        .then((out) => { if (out.reply) onMessage(out.reply); })
        .catch((e) => notice(e.message));
    }
    if (state.channel && state.channel.readyState === "open") state.channel.send(JSON.stringify(m));
    return Promise.resolve();
  }
  const channelReady = () => janusMode ? !!state.key : !!(state.channel && state.channel.readyState === "open");

  async function poll() {
    let after = 0;
    while (!state.closed) {
      try {
        const out = await apiGet(`/api/v1/video/rooms/${cfg.room}/events?after=${after}&wait=20`);
        for (const m of out.items) onMessage(m);
        after = out.next;
      } catch (e) {
        if (e.status === 403 || e.status === 404) { if (!state.closed) closed("ended"); return; }
        await sleep(1000);
      }
    }
  }

  async function localMedia() {
    // Janus forwards without re-encoding, so the page may send its camera at its best: the
    // document camera's stills are taken from this track at full resolution.
    const video = janusMode ? { width: { ideal: 1280 }, height: { ideal: 720 } } : { width: 640, height: 480 };
    try {
      return await navigator.mediaDevices.getUserMedia({ video, audio: true });
    } catch (e) {
      notice("无法使用摄像头或麦克风 (" + e.name + "), 将只接收画面");
      return null;
    }
  }

  async function join() {
    if (janusMode) return joinJanus();
    const stream = await localMedia();
    state.stream = stream;
    if (stream) $("local").srcObject = stream;
    const pc = new RTCPeerConnection({ iceServers: cfg.iceServers || [], iceTransportPolicy: cfg.iceTransportPolicy || "all" });
    state.pc = pc;
    if (stream) stream.getTracks().forEach((t) => pc.addTrack(t, stream));
    const channel = pc.createDataChannel("room");
    state.channel = channel;
    channel.onmessage = (ev) => onMessage(JSON.parse(ev.data));
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "connected") { state.connected = true; setStatus("已连接", "connected"); }
      if (pc.connectionState === "failed") setStatus("连接失败", "failed");
    };
    await pc.setLocalDescription(await pc.createOffer());
    await iceDone(pc);
    let out;
    try {
      out = await api("/api/v1/video/join", { token: cfg.token, sdp: pc.localDescription.sdp, type: "offer" });
    } catch (e) {
      setStatus("无法加入: " + e.message, "refused");
      pc.close();
      return;
    }
    state.key = out.key; state.me = out.participant;
    await pc.setRemoteDescription(out.answer);
    showPeople(out.participants);
  }

  // -- Janus: one publisher handle, one subscriber handle per other participant's feed ----------
  function browserDetails() {
    const m = navigator.userAgent.match(/(Firefox|Chrome|Chromium|Version)\/(\d+)/);
    const name = /Firefox/.test(navigator.userAgent) ? "firefox" : /Safari/.test(navigator.userAgent) && !/Chrom/.test(navigator.userAgent) ? "safari" : "chrome";
    return { browser: name, version: m ? parseInt(m[2], 10) : 0 };
  }

  async function joinJanus() {
    const stream = await localMedia();
    state.stream = stream;
    if (stream) $("local").srcObject = stream;
    let out;
    try {
      out = await api("/api/v1/video/join", { token: cfg.token });
    } catch (e) {
      setStatus("无法加入: " + e.message, "refused");
      if (stream) stream.getTracks().forEach((t) => t.stop());
      return;
    }
    state.key = out.key; state.me = out.participant; state.janus = out.janus;
    showPeople(out.participants);
    poll();
    Janus.init({ debug: false, dependencies: Janus.useDefaultDependencies({ adapter: { browserDetails: browserDetails() } }),
      callback: () => {
        state.session = new Janus({ server: out.janus.path, iceServers: cfg.iceServers || [],
          iceTransportPolicy: cfg.iceTransportPolicy || "all",
          success: () => publishJanus(stream),
          error: () => { if (!state.closed) setStatus("媒体服务器连接失败", "failed"); } });
      } });
  }

  function publishJanus(stream) {
    const J = state.janus;
    state.session.attach({ plugin: "janus.plugin.videoroom", opaqueId: "tongban-" + state.me,
      success: (h) => {
        state.pub = h;
        h.send({ message: { request: "join", ptype: "publisher", room: J.room, id: J.publisher, display: cfg.name, token: J.token } });
      },
      error: () => setStatus("连接失败", "failed"),
      webrtcState: (on) => { if (on) { state.connected = true; setStatus("已连接", "connected"); } },
      onmessage: (msg, jsep) => {
        const h = state.pub;
        if (msg.videoroom === "joined") {
          const tracks = stream ? stream.getTracks().map((t) => ({ type: t.kind, capture: t, recv: false })) : [];
          if (tracks.length) {
            h.createOffer({ tracks, success: (offer) => h.send({ message: { request: "publish", audio: true, video: true }, jsep: offer }),
              error: () => setStatus("连接失败", "failed") });
          } else { state.connected = true; setStatus("已连接 (仅接收)", "connected"); }
        }
        if (msg.error) notice(msg.error);
        for (const f of msg.publishers || []) state.feeds[f.id] = true;
        const gone = msg.unpublished || msg.leaving;
        if (gone && gone !== "ok") delete state.feeds[gone];
        if (msg.publishers || gone) showPeople(state.people);
        if (jsep) h.handleRemoteJsep({ jsep });
      } });
  }

  function subscribeJanus(peer) {
    const J = state.janus;
    const ms = new MediaStream();
    const video = tile(peer).querySelector("video");
    state.views[peer.id] = { detach: () => {} };
    state.session.attach({ plugin: "janus.plugin.videoroom", opaqueId: "tongban-" + state.me,
      success: (h) => {
        state.views[peer.id] = h;
        h.send({ message: { request: "join", ptype: "subscriber", room: J.room, streams: [{ feed: peer.feed }], token: J.token } });
      },
      error: () => { delete state.views[peer.id]; },
      onmessage: (msg, jsep) => {
        const h = state.views[peer.id];
        if (jsep && h && h.createAnswer) {
          h.createAnswer({ jsep, tracks: [{ type: "data" }],
            success: (answer) => h.send({ message: { request: "start", room: J.room }, jsep: answer }),
            error: () => notice("无法接收 " + peer.name + " 的画面") });
        }
      },
      onremotetrack: (track, mid, on) => {
        if (on) { ms.addTrack(track); video.srcObject = ms; video.play().catch(() => {}); }
        else { ms.getTracks().filter((t) => t.id === track.id).forEach((t) => ms.removeTrack(t)); }
      } });
  }

  // -- stills: the clerk asks, this page takes one from its own camera at full resolution -----
  async function canvasFrame(track) {
    const v = document.createElement("video");
    v.muted = true; v.playsInline = true; v.srcObject = new MediaStream([track]);
    await v.play();
    while (!v.videoWidth) await sleep(20);
    const c = document.createElement("canvas");
    c.width = v.videoWidth; c.height = v.videoHeight;
    c.getContext("2d").drawImage(v, 0, 0, c.width, c.height);
    v.srcObject = null;
    return new Promise((resolve) => c.toBlob(resolve, "image/jpeg", 0.92));
  }

  async function takeStill(m) {
    const track = state.stream && state.stream.getVideoTracks()[0];
    if (!track) { notice("没有摄像头画面, 无法拍照"); return; }
    let blob = null, how = "canvas";
    if (window.ImageCapture) {
      try { blob = await new ImageCapture(track).takePhoto(); how = "ImageCapture"; } catch (e) { blob = null; }
    }
    if (!blob || !/^image\/(jpeg|png)$/.test(blob.type)) { blob = await canvasFrame(track); how = "canvas"; }
    try {
      const r = await fetch(`/api/v1/video/rooms/${cfg.room}/stills/${encodeURIComponent(m.id)}`, {
        method: "POST", headers: { "X-Participant-Key": state.key, "Content-Type": blob.type }, body: blob });
      const page = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error(page.detail || ("请求失败 " + r.status));
      state.stills.push({ how, width: page.width, height: page.height, sha256: page.sha256 });
      addChat(`【已按 ${m.by} 的要求拍照上传 (${page.width}×${page.height})】`);
    } catch (e) { notice("照片上传失败: " + e.message); }
  }

  function tile(peer) {
    let fig = document.querySelector(`figure[data-peer="${peer.id}"]`);
    if (fig) return fig;
    fig = document.createElement("figure");
    fig.className = "tile"; fig.dataset.peer = peer.id; fig.dataset.role = peer.role;
    const v = document.createElement("video");
    v.autoplay = true; v.playsInline = true;
    const cap = document.createElement("figcaption");
    cap.textContent = `${peer.name} (${roleNames[peer.role] || peer.role})`;
    fig.append(v, cap);
    $("remotes").append(fig);
    return fig;
  }

  async function view(peer) {
    if (state.views[peer.id] || !(peer.video || peer.audio)) return;
    if (janusMode) { if (state.session && state.feeds[peer.feed]) subscribeJanus(peer); return; }
    const pc = new RTCPeerConnection({ iceServers: cfg.iceServers || [], iceTransportPolicy: cfg.iceTransportPolicy || "all" });
    state.views[peer.id] = pc;
    if (peer.video) pc.addTransceiver("video", { direction: "recvonly" });
    if (peer.audio) pc.addTransceiver("audio", { direction: "recvonly" });
    const ms = new MediaStream();
    const video = tile(peer).querySelector("video");
    pc.ontrack = (ev) => { ms.addTrack(ev.track); video.srcObject = ms; video.play().catch(() => {}); };
    await pc.setLocalDescription(await pc.createOffer());
    await iceDone(pc);
    try {
      const answer = await api(`/api/v1/video/rooms/${cfg.room}/views`, { publisher: peer.id, sdp: pc.localDescription.sdp, type: "offer" });
      await pc.setRemoteDescription(answer);
    } catch (e) {
      pc.close(); delete state.views[peer.id];
    }
  }

  function showPeople(list) {
    state.people = list;
    const ul = $("people"); ul.textContent = "";
    for (const p of list) {
      const li = document.createElement("li");
      li.textContent = `${p.name} · ${roleNames[p.role] || p.role}` + (p.id === state.me ? " (我)" : "");
      ul.append(li);
    }
    const ids = new Set(list.map((p) => p.id));
    for (const id of Object.keys(state.views)) {
      if (!ids.has(id)) {
        const v = state.views[id]; if (v.detach) v.detach(); else v.close();
        delete state.views[id];
        const fig = document.querySelector(`figure[data-peer="${id}"]`); if (fig) fig.remove();
      }
    }
    for (const p of list) if (p.id !== state.me) view(p);
    const who = $("capture-who");
    if (who) {
      who.textContent = "";
      for (const p of list) if (p.video) {
        const o = document.createElement("option"); o.value = p.id; o.textContent = p.name; who.append(o);
      }
    }
  }

  function addChat(line) {
    const li = document.createElement("li"); li.textContent = line; $("chat").append(li);
    li.scrollIntoView({ block: "nearest" });
  }

  function onMessage(m) {
    if (m.t === "participants") { if (!state.me) state.me = m.you; showPeople(m.list); }
    else if (m.t === "chat") addChat(`${m.from}: ${m.text}`);
    else if (m.t === "capture") addChat(`【${m.by} 对 ${m.of} 拍照存档】`);
    else if (m.t === "file") addChat(`【${m.from} 发送了文件 ${m.name}】`);
    else if (m.t === "file_result") $("file-status").textContent = m.ok ? "文件已归档为材料页" : `文件未通过校验: ${m.reason}`;
    else if (m.t === "error") notice(`${m.field}: ${m.reason}`);
    else if (m.t === "still_request") takeStill(m);
    else if (m.t === "closed") closed(m.reason);
  }

  function closed(reason) {
    if (state.closed) return;
    state.closed = true;
    const why = { ended: "工作人员已结束会议", state_left: "办件已进入下一环节", idle: "会议长时间无人, 已关闭", left: "您已离开会议" };
    setStatus("会议已结束: " + (why[reason] || reason), "closed");
    Object.values(state.views).forEach((v) => { if (v.detach) v.detach(); else v.close(); });
    if (state.pc) state.pc.close();
    if (state.session) state.session.destroy({ unload: true });
    const local = $("local").srcObject; if (local) local.getTracks().forEach((t) => t.stop());
  }

  $("chat-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("chat-text").value.trim();
    if (!text || !channelReady()) return;
    sendMsg({ t: "chat", text });
    $("chat-text").value = "";
  });

  $("file-input").addEventListener("change", () => {
    const f = $("file-input").files[0];
    $("file-name").textContent = f ? f.name : "未选择文件";
  });

  $("file-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = $("file-input").files[0];
    if (!f || !channelReady()) return;
    if (f.size > 10 * 1024 * 1024) { $("file-status").textContent = "文件超过 10 MB"; return; }
    const id = "f" + Date.now();
    const ch = state.channel;
    await sendMsg({ t: "file", id, name: f.name, size: f.size, material: $("file-material").value });
    const bytes = new Uint8Array(await f.arrayBuffer());
    const CHUNK = (janusMode ? 32 : 12) * 1024;
    for (let i = 0; i < bytes.length; i += CHUNK) {
      if (!janusMode) while (ch.bufferedAmount > 1024 * 1024) await sleep(20);
      let bin = ""; const part = bytes.subarray(i, i + CHUNK);
      for (let j = 0; j < part.length; j++) bin += String.fromCharCode(part[j]);
      await sendMsg({ t: "chunk", id, data: btoa(bin) });
      $("file-status").textContent = `发送中 ${Math.round((i + part.length) * 100 / bytes.length)}%`;
    }
    await sendMsg({ t: "end", id });
  });

  const captureBtn = $("capture-btn");
  if (captureBtn) captureBtn.addEventListener("click", async () => {
    try {
      const page = await api(`/api/v1/video/rooms/${cfg.room}/captures`, { participant: $("capture-who").value, material_id: $("capture-material").value });
      notice(""); addChat(`【已拍照存档: ${page.sha256 ? page.sha256.slice(0, 12) : ""}】`);
    } catch (e) { notice("拍照失败: " + e.message); }
  });

  const form = $("inspection-form");
  if (form) form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const results = {}, notes = {};
    for (const e of cfg.checklist) { results[e.id] = fd.get(e.id) === "1"; notes[e.id] = fd.get("note_" + e.id) || ""; }
    try {
      const out = await api(`/api/v1/video/rooms/${cfg.room}/inspection`, { results, notes, comment: fd.get("comment") || null });
      notice(out.trigger.endsWith("passed") ? "踏勘通过, 办件已进入审核" : "踏勘不通过, 已记录原因");
    } catch (e) { notice("提交失败: " + e.message); }
  });

  const invite = $("invite-form");
  if (invite) invite.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const out = await api(`/api/v1/video/rooms/${cfg.room}/invites`, { role: $("invite-role").value, name: $("invite-name").value.trim() });
      $("invite-url").value = out.url; $("invite-url").select();
    } catch (e) { notice("生成链接失败: " + e.message); }
  });

  $("leave-btn").addEventListener("click", async () => {
    if (state.key) await api(`/api/v1/video/rooms/${cfg.room}/leave`).catch(() => {});
    closed("left");
  });
  const endBtn = $("end-btn");
  if (endBtn) endBtn.addEventListener("click", () => api(`/api/v1/video/rooms/${cfg.room}/end`).catch((e) => notice(e.message)));
  window.addEventListener("pagehide", () => {
    if (state.key && !state.closed) navigator.sendBeacon(`/api/v1/video/rooms/${cfg.room}/leave?k=${encodeURIComponent(state.key)}`);
  });

  join();
})();
