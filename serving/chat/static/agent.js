// The agent console: the hand-off queue, one conversation at a time with the model's view of each
// turn, labels (agent_desk.js), canned replies, the customer's context and resolution, and the
// "Label these" queue of candidate new intents (new_intents.js).
import { element, reportTyping, startChat, timeOf } from "/chat/static/chat.js";
import { HANDOFF_REASONS, createDesk } from "/chat/static/agent_desk.js";
import { newIntentsQueue } from "/chat/static/new_intents.js";

const queue = document.getElementById("queue");
const messages = document.getElementById("messages");
const typing = document.getElementById("typing");
const presence = document.getElementById("presence");
const deskPanel = document.getElementById("desk");
const CONTROLS = ["canned", "text", "send", "resolution", "resolve"];
const requests = new Map();
let me = null;
let active = null; // the request being handled
let customerRead = null; // the newest message of the conversation the customer has read
let chat = null;
const send = (type, data) => chat.send(type, data);
const desk = createDesk(send);

function show(node) {
  messages.append(node);
  messages.scrollTop = messages.scrollHeight;
}

function notice(text) {
  show(element("div", { class: "notice" }, text));
}

function showMessage(data) {
  if (!active || data.room_id !== active.room_id) return;
  const mine = data.sender_id === me;
  const author = mine ? "you" : `${data.sender_id} (${data.role})`;
  const meta = element("div", { class: "meta" }, author, " · ", timeOf(data.ts));
  if (data.role === "bot" && data.intent) {
    meta.append(element("span", { class: `intent${data.fallback ? " fallback" : ""}` },
      `${data.intent} ${Math.round((data.confidence || 0) * 100)}%`));
  }
  if (data.handoff_reason) meta.append(element("span", { class: "intent fallback" }, `hand-off: ${data.handoff_reason}`));
  const bubble = element("div", { class: `message ${mine ? "mine" : data.role}`, "data-message-id": data.message_id },
    element("div", { class: "text" }, data.content), meta);
  if (data.role === "customer") bubble.append(desk.labelForm(data));
  show(bubble);
  if (data.role === "bot" && data.intent) { // the model's latest reading of the customer
    desk.suggestReplies(data.fallback ? data.top_k?.[0]?.intent : data.intent);
  }
  if (data.role === "bot" && data.reply_to && data.top_k) {
    const form = messages.querySelector(`.label-form[data-message-id="${CSS.escape(data.reply_to)}"]`);
    if (form) desk.suggest(form, data.top_k);
  }
}

// "Seen" under the agent's messages up to the one the customer read (a receipt covers the
// earlier ones); remembered, since room_history may arrive after the desk's answer.
function markSeen(messageId) {
  if (messageId) customerRead = messageId;
  const read = customerRead && messages.querySelector(`.message[data-message-id="${CSS.escape(customerRead)}"]`);
  if (!read) return;
  for (const bubble of messages.querySelectorAll(".message.mine")) {
    if (!bubble.querySelector(".seen")) bubble.querySelector(".meta").append(element("span", { class: "seen" }, " · Seen"));
    if (bubble === read) break;
  }
}

function renderQueue() {
  queue.replaceChildren();
  for (const request of requests.values()) {
    const card = element("button", {
      type: "button",
      class: `request${active && active.request_id === request.request_id ? " active" : ""}`,
      "data-request-id": request.request_id,
      onclick: () => take(request),
    }, element("strong", {}, request.customer_id),
    // The customer's words when they escalated, else the hand-off's code said in words.
    element("span", { class: "reason" }, HANDOFF_REASONS[request.reason] || request.reason));
    if (request.description) card.append(element("span", { class: "description" }, request.description));
    queue.append(card);
  }
}

function setControls(enabled) {
  for (const id of CONTROLS) document.getElementById(id).disabled = !enabled;
}

function take(request) {
  active = request;
  customerRead = null;
  messages.replaceChildren();
  desk.forgetConversation();
  send("join_room", { room_id: request.room_id });
  send("agent_desk", { request_id: request.request_id });
  setControls(true);
  renderQueue();
}

const labelThese = newIntentsQueue(document.getElementById("new-intents"), notice, send);

const handlers = {
  ...labelThese,
  resume_complete: () => {
    labelThese.resume_complete();
    send("agent_desk", {}); // the known intents and canned replies (the model may have changed)
  },
  welcome: (data) => { me = data.user_id; presence.textContent = `${me} · online`; },
  agent_desk: (data) => {
    desk.renderIntents(data);
    if (active && data.request?.request_id === active.request_id) {
      desk.renderRequest(deskPanel, data);
      markSeen(data.customer_read);
    }
  },
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
    markSeen(null);
    // One receipt for the newest customer message: the customer sees everything before it read.
    const last = data.messages.filter((m) => m.role === "customer").at(-1);
    if (last) send("read_receipt", { message_id: last.message_id });
  },
  new_message: (data) => {
    typing.textContent = "";
    showMessage(data);
    if (active && data.room_id === active.room_id && data.role === "customer") {
      send("read_receipt", { message_id: data.message_id });
    }
  },
  bot_reply: showMessage,
  read_receipt: (data) => {
    if (active && data.room_id === active.room_id && data.reader_id === active.customer_id) markSeen(data.message_id);
  },
  typing: (data) => {
    if (active && data.room_id === active.room_id) typing.textContent = data.is_typing ? `${data.user_id} is typing…` : "";
  },
  presence_update: (data) => {
    if (active && data.user_id === active.customer_id) notice(`${data.user_id} is ${data.status}`);
  },
  label_recorded: (data) => {
    const form = messages.querySelector(`.label-form[data-message-id="${CSS.escape(data.message_id)}"]`);
    if (form) {
      desk.labelled(form, data);
      desk.suggestReplies(data.intent); // the agent's reading beats the model's
    }
    notice(`Labelled as ${data.intent}`);
  },
  support_request_escalated: (data) => notice(`Escalated: ${data.reason || "no reason given"}`),
  support_request_resolved: (data) => {
    requests.delete(data.request_id);
    if (active && active.request_id === data.request_id) {
      notice(`Resolved: ${data.resolution}`);
      setControls(false);
      active = null;
      desk.forgetConversation();
    }
    renderQueue();
  },
  error: (data) => notice(`⚠ ${data.message}`),
};

chat = await startChat("agent", handlers);

document.getElementById("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  if (!active || !input.value.trim()) return;
  chat.say(input.value.trim(), active.room_id);
  input.value = "";
});

// Picking a canned reply puts it in the reply box, to send as it is or edit first.
document.getElementById("canned").addEventListener("input", (event) => {
  const option = [...document.getElementById("canned-replies").options].find((o) => o.value === event.target.value);
  if (!option) return;
  const text = document.getElementById("text");
  text.value = option.value;
  event.target.value = "";
  text.focus();
});

reportTyping(chat, document.getElementById("text"), () => active?.room_id);

document.getElementById("resolve").addEventListener("click", () => {
  if (!active) return;
  send("support_resolve", { request_id: active.request_id, resolution: document.getElementById("resolution").value });
});
