// Chat client shared by the customer page and the agent console.
// Reconnects with exponential backoff and full jitter, resumes from the last seq it saw, and
// keeps unsent messages in a localStorage outbox that it flushes on reconnect (the server
// drops duplicates by client_msg_id, so a resend after a lost ack is harmless).
// A customer's page starts every load from seq 0: its conversation, and what was delivered and
// read, come back from the store (the event log), not from what this tab happened to remember.
// The console keeps its seq in localStorage: it rebuilds from the live queue and room_history.

import { element, tellWidget } from "/chat/static/dom.js";
import { obtainToken, showSignInHelp } from "/chat/static/signin.js";

export { element, tellWidget }; // the pages import them from here

const MAX_BACKOFF_MS = 15000;
const BASE_BACKOFF_MS = 500;

export class ChatConnection {
  constructor({ token, storageKey, onFrame, onStatus, keepSeq = false }) {
    this.token = token;
    this.key = storageKey;
    this.keepSeq = keepSeq;
    this.seq = 0; // without keepSeq: this page load's newest seq
    this.replaying = false; // between welcome and the last resume_complete
    this.onFrame = onFrame;
    this.onStatus = onStatus || (() => {});
    this.attempt = 0;
    this.socket = null;
    this.closedByUser = false;
    this.seenMessages = new Set();
  }

  get lastSeq() {
    if (!this.keepSeq) return this.seq;
    return Number(localStorage.getItem(`${this.key}:last_seq`) || 0);
  }

  set lastSeq(value) {
    if (value <= this.lastSeq) return;
    if (this.keepSeq) localStorage.setItem(`${this.key}:last_seq`, String(value));
    else this.seq = value;
  }

  get outbox() {
    return JSON.parse(localStorage.getItem(`${this.key}:outbox`) || "[]");
  }

  set outbox(items) {
    localStorage.setItem(`${this.key}:outbox`, JSON.stringify(items));
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}/chat/ws`;
    this.onStatus("connecting");
    // The token as a subprotocol, not in the URL: proxies write URLs to their access logs.
    const socket = new WebSocket(url, ["bearer", this.token]);
    this.socket = socket;
    socket.onmessage = (event) => this.receive(JSON.parse(event.data));
    socket.onclose = (event) => {
      this.socket = null;
      if (event.code === 1008) {
        // A bad or expired token does not get better by retrying; a reload asks for a new one.
        localStorage.removeItem(`${this.key}:token`);
        this.onStatus("unauthorised", event.reason);
        return;
      }
      if (!this.closedByUser) this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    const ceiling = Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** this.attempt);
    const delay = Math.random() * ceiling; // full jitter: reconnecting clients spread out
    this.attempt += 1;
    this.onStatus("reconnecting", `in ${(delay / 1000).toFixed(1)} s`);
    setTimeout(() => this.connect(), delay);
  }

  receive(frame) {
    const { type, data } = frame;
    if (type === "welcome") {
      this.attempt = 0;
      this.onStatus("online");
      this.replaying = true;
      this.sendRaw({ type: "resume", data: { last_seq: this.lastSeq } });
    } else if (type === "resume_complete") {
      this.lastSeq = data.last_seq;
      if (data.more) { // the server replays at most CHAT_REPLAY_LIMIT events at a time
        this.sendRaw({ type: "resume", data: { last_seq: this.lastSeq } });
        return;
      }
      this.replaying = false;
      this.flushOutbox();
    } else if (type === "error" && data.code === 429 && this.replaying) {
      // A long history pages through many resumes and may meet the resume limit
      // (CHAT_RESUME_RATE_PER_S): wait and go on rather than stop half replayed.
      setTimeout(() => this.sendRaw({ type: "resume", data: { last_seq: this.lastSeq } }),
        2000 + Math.random() * 1000);
      return;
    } else if (type === "ping") {
      this.sendRaw({ type: "heartbeat", data: {} });
      return;
    } else if (type === "ack") {
      this.outbox = this.outbox.filter((item) => item.client_msg_id !== data.client_msg_id);
    }
    if (data && typeof data.seq === "number" && type !== "ack") this.lastSeq = data.seq;
    if ((type === "new_message" || type === "bot_reply") && data.message_id) {
      if (this.seenMessages.has(data.message_id)) return; // replayed twice after a resume
      this.seenMessages.add(data.message_id);
    }
    this.onFrame(frame);
  }

  sendRaw(frame) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  send(type, data = {}) {
    return this.sendRaw({ type, data });
  }

  say(content, roomId) {
    const item = { client_msg_id: crypto.randomUUID(), content };
    if (roomId) item.room_id = roomId;
    this.outbox = [...this.outbox, item];
    this.sendRaw({ type: "chat_message", data: item });
    return item;
  }

  flushOutbox() {
    for (const item of this.outbox) this.sendRaw({ type: "chat_message", data: item });
  }
}

// Connect a page: token, status badge, frame handlers; exposed as window.chat for the console.
export async function startChat(role, handlers) {
  const statusBadge = document.getElementById("status");
  const storageKey = `chat:${role}`;
  const token = await obtainToken(role, storageKey);
  if (!token) {
    showSignInHelp(role, statusBadge);
    return new Promise(() => {}); // the page stops here: nothing works without a token
  }
  const chat = new ChatConnection({
    token,
    storageKey,
    keepSeq: role === "agent",
    onFrame: ({ type, data }) => handlers[type]?.(data),
    onStatus: (status, detail) => {
      statusBadge.className = `status ${status}`;
      statusBadge.textContent = detail ? `${status} ${detail}` : status;
      handlers.status?.(status, detail);
      if (status === "unauthorised") tellWidget("supportloop:signed-out"); // e.g. expired
    },
  });
  window.chat = chat;
  chat.connect();
  return chat;
}

// Send "typing" when typing starts (again at most every 3 s while it goes on) and "stopped" after
// 1.5 s of quiet, for the room `roomOf()` names: one frame per keystroke would spend the user's
// frame budget (CHAT_RATE_PER_S) and get their next message refused.
export function reportTyping(chat, input, roomOf) {
  let timer = null;
  let announced = 0;
  input.addEventListener("input", () => {
    const roomId = roomOf();
    if (!roomId) return;
    if (Date.now() - announced > 3000) {
      chat.send("typing", { room_id: roomId, is_typing: true });
      announced = Date.now();
    }
    clearTimeout(timer);
    timer = setTimeout(() => {
      chat.send("typing", { room_id: roomId, is_typing: false });
      announced = 0;
    }, 1500);
  });
}

// "14:05" (the reader's clock; "28 Nov, 14:05" before today) in a <time> element carrying the
// exact ISO time: a replayed earlier conversation must not read as if it happened today.
export function timeOf(ts) {
  const when = ts ? new Date(ts) : new Date();
  const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const today = when.toDateString() === new Date().toDateString();
  const label = today ? time : `${when.toLocaleDateString([], { day: "numeric", month: "short" })}, ${time}`;
  return element("time", { datetime: when.toISOString(), title: when.toLocaleString() }, label);
}
