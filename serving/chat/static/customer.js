// The customer page: one support conversation with the bot, then with an agent if needed.
import { element, reportTyping, startChat } from "/chat/static/chat.js";

const messages = document.getElementById("messages");
const typing = document.getElementById("typing");
let me = null;
let roomId = null;
let requestId = null;

function show(node) {
  messages.append(node);
  messages.scrollTop = messages.scrollHeight;
}

function notice(text) {
  show(element("div", { class: "notice" }, text));
}

function showMessage(data) {
  const mine = data.sender_id === me;
  const kind = mine ? "mine" : data.role;
  const bubble = element("div", { class: `message ${kind}`, "data-message-id": data.message_id }, data.content);
  const meta = element("div", { class: "meta" }, mine ? "you" : data.role === "bot" ? "assistant" : data.sender_id);
  if (data.role === "bot" && data.intent) {
    const badge = element("span", { class: `intent${data.fallback ? " fallback" : ""}` },
      `${data.intent} ${Math.round((data.confidence || 0) * 100)}%`);
    meta.append(badge);
  }
  bubble.append(meta);
  show(bubble);
}

function askForRating() {
  const row = element("div", { class: "notice rating" }, "How did we do? ");
  for (let stars = 1; stars <= 5; stars += 1) {
    row.append(element("button", {
      type: "button", "data-rating": String(stars),
      onclick: () => { chat.send("rate_support", { request_id: requestId, rating: stars }); row.remove(); },
    }, "★".repeat(stars)));
  }
  show(row);
}

const handlers = {
  welcome: (data) => { me = data.user_id; },
  support_request_created: (data) => { roomId = data.room_id; requestId = data.request_id; },
  new_message: (data) => { typing.textContent = ""; showMessage(data); },
  bot_reply: (data) => {
    showMessage(data);
    if (data.handoff_reason) notice("A human agent has been asked to join.");
  },
  typing: (data) => {
    typing.textContent = data.is_typing ? `${data.user_id} is typing…` : "";
  },
  member_joined: (data) => { if (data.role === "agent") notice(`${data.user_id} (agent) joined`); },
  support_request_escalated: () => notice("Your request was escalated."),
  support_request_resolved: (data) => {
    notice(`Resolved${data.resolution ? `: ${data.resolution}` : ""}`);
    askForRating();
    roomId = null;
  },
  support_rated: (data) => notice(`Thanks for rating us ${data.rating}/5`),
  error: (data) => notice(`⚠ ${data.message}`),
};

const chat = await startChat("customer", handlers);

document.getElementById("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  const content = input.value.trim();
  if (!content) return;
  chat.say(content, roomId);
  input.value = "";
});

reportTyping(chat, document.getElementById("text"), () => roomId);

document.getElementById("human").addEventListener("click", () => {
  chat.send("support_request", { description: "customer pressed 'Talk to a human'" });
});
