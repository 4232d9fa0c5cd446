// 云见面 room page: one publishing connection (camera, microphone, data channel) and one
// receive-only connection per other participant. Offers are sent complete (no trickle ICE).
"use strict";
(function () {
  const cfg = JSON.parse(document.getElementById("room-config").textContent);
  const $ = (id) => document.getElementById(id);
  const state = { key: null, me: null, pc: null, channel: null, views: {}, people: [],
                  connected: false, closed: false, files: {} };
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

  async function localMedia() {
    try {
      return await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
    } catch (e) {
      notice("无法使用摄像头或麦克风 (" + e.name + "), 将只接收画面");
      return null;
    }
  }

  async function join() {
    const stream = await localMedia();
    if (stream) $("local").srcObject = stream;
    const pc = new RTCPeerConnection({ iceServers: cfg.iceServers || [] });
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
    const pc = new RTCPeerConnection({ iceServers: cfg.iceServers || [] });
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
        state.views[id].close(); delete state.views[id];
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
    else if (m.t === "closed") closed(m.reason);
  }

  function closed(reason) {
    state.closed = true;
    const why = { ended: "工作人员已结束会议", state_left: "案件已进入下一环节", idle: "会议长时间无人, 已关闭" };
    setStatus("会议已结束: " + (why[reason] || reason), "closed");
    Object.values(state.views).forEach((pc) => pc.close());
    if (state.pc) state.pc.close();
    const local = $("local").srcObject; if (local) local.getTracks().forEach((t) => t.stop());
  }

  $("chat-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("chat-text").value.trim();
    if (!text || !state.channel || state.channel.readyState !== "open") return;
    state.channel.send(JSON.stringify({ t: "chat", text }));
    $("chat-text").value = "";
  });

  $("file-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = $("file-input").files[0];
    if (!f || !state.channel) return;
    if (f.size > 10 * 1024 * 1024) { $("file-status").textContent = "文件超过 10 MB"; return; }
    const id = "f" + Date.now();
    const ch = state.channel;
    ch.send(JSON.stringify({ t: "file", id, name: f.name, size: f.size, material: $("file-material").value }));
    const bytes = new Uint8Array(await f.arrayBuffer());
    const CHUNK = 12 * 1024;
    for (let i = 0; i < bytes.length; i += CHUNK) {
      while (ch.bufferedAmount > 1024 * 1024) await new Promise((r) => setTimeout(r, 20));
      let bin = ""; const part = bytes.subarray(i, i + CHUNK);
      for (let j = 0; j < part.length; j++) bin += String.fromCharCode(part[j]);
      ch.send(JSON.stringify({ t: "chunk", id, data: btoa(bin) }));
      $("file-status").textContent = `发送中 ${Math.round((i + part.length) * 100 / bytes.length)}%`;
    }
    ch.send(JSON.stringify({ t: "end", id }));
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
      notice(out.trigger.endsWith("passed") ? "踏勘通过, 案件已进入审核" : "踏勘不通过, 已记录原因");
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
