// The agent console: the hand-off queue, one conversation at a time, labels and resolution,
// and the "Label these" queue of candidate new intents (new_intents.js).
import { element, reportTyping, startChat } from "/chat/static/chat.js";
import { newIntentsQueue } from "/chat/static/new_intents.js";

const queue = document.getElementById("queue");
const messages = document.getElementById("messages");
const typing = document.getElementById("typing");
const presence = document.getElementById("presence");
const requests = new Map();
let me = null;
let active = null; // the request being handled

function show(node) {
  messages.append(node);
  messages.scrollTop = messages.scrollHeight;
}

function notice(text) {
  show(element("div", { class: "notice" }, text));
}

function labelForm(data) {
  const input = element("input", { placeholder: "true intent", "aria-label": "true intent" });
  const form = element("form", { class: "label-form" }, input, element("button", { type: "submit" }, "Label"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.value.trim()) chat.send("label_message", { message_id: data.message_id, intent: input.value.trim() });
  });
  return form;
}

function showMessage(data) {
  if (!active || data.room_id !== active.room_id) return;
  const mine = data.sender_id === me;
  const bubble = element("div", { class: `message ${mine ? "mine" : data.role}`, "data-message-id": data.message_id },
    data.content);
  const meta = element("div", { class: "meta" }, mine ? "you" : `${data.sender_id} (${data.role})`);
  if (data.role === "bot" && data.intent) {
    meta.append(element("span", { class: `intent${data.fallback ? " fallback" : ""}` },
      `${data.intent} ${Math.round((data.confidence || 0) * 100)}%`));
  }
  if (data.handoff_reason) meta.append(element("span", { class: "intent fallback" }, `hand-off: ${data.handoff_reason}`));
  bubble.append(meta);
  if (data.role === "customer") bubble.append(labelForm(data));
  show(bubble);
}

function renderQueue() {
  queue.replaceChildren();
  for (const request of requests.values()) {
    const card = element("div", {
      class: `request${active && active.request_id === request.request_id ? " active" : ""}`,
      "data-request-id": request.request_id,
      onclick: () => take(request),
    }, element("strong", {}, request.customer_id), element("div", { class: "reason" }, request.reason));
    if (request.description) card.append(element("div", {}, request.description));
    queue.append(card);
  }
}

function take(request) {
  active = request;
  messages.replaceChildren();
  chat.send("join_room", { room_id: request.room_id });
  for (const id of ["text", "send", "resolution", "resolve"]) document.getElementById(id).disabled = false;
  renderQueue();
}

const labelThese = newIntentsQueue(document.getElementById("new-intents"), notice,
  (type, data) => chat.send(type, data));

const handlers = {
  ...labelThese,
  welcome: (data) => { me = data.user_id; presence.textContent = `${me} · online`; },
  new_support_request: (data) => { requests.set(data.request_id, data); renderQueue(); },
  support_queue: (data) => {
    requests.clear();
    for (const request of data.requests) requests.set(request.request_id, request);
    renderQueue();
  },
  room_history: (data) => {
    if (!active || data.room_id !== active.room_id) return;
    messages.replaceChildren();
    data.messages.forEach(showMessage);
  },
  new_message: (data) => { typing.textContent = ""; showMessage(data); },
  bot_reply: showMessage,
  typing: (data) => {
    if (active && data.room_id === active.room_id) typing.textContent = data.is_typing ? `${data.user_id} is typing…` : "";
  },
  presence_update: (data) => {
    if (active && data.user_id === active.customer_id) notice(`${data.user_id} is ${data.status}`);
  },
  label_recorded: (data) => notice(`Labelled as ${data.intent}`),
  support_request_escalated: (data) => notice(`Escalated: ${data.reason || "no reason given"}`),
  support_request_resolved: (data) => {
    requests.delete(data.request_id);
    if (active && active.request_id === data.request_id) {
      notice(`Resolved: ${data.resolution}`);
      for (const id of ["text", "send", "resolution", "resolve"]) document.getElementById(id).disabled = true;
      active = null;
    }
    renderQueue();
  },
  error: (data) => notice(`⚠ ${data.message}`),
};

const chat = await startChat("agent", handlers);

document.getElementById("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  if (!active || !input.value.trim()) return;
  chat.say(input.value.trim(), active.room_id);
  input.value = "";
});

reportTyping(chat, document.getElementById("text"), () => active?.room_id);

document.getElementById("resolve").addEventListener("click", () => {
  if (!active) return;
  chat.send("support_resolve", { request_id: active.request_id, resolution: document.getElementById("resolution").value });
});
