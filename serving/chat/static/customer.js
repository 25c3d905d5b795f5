// The customer page (also the widget's panel, /chat/embed): one support conversation with the
// bot, then with an agent if needed. Customers see who said what and when, whether their message
// was sent and read, who is typing and whether the connection is back; never the model's labels
// (the server does not even send them to a customer's socket).
import { element, reportTyping, startChat, tellWidget, timeOf } from "/chat/static/chat.js";

const messages = document.getElementById("messages");
const typing = document.getElementById("typing");
const banner = document.getElementById("connection");
const pending = new Map(); // client_msg_id → the bubble shown before the server has it
const bubbles = new Map(); // message_id → bubble
let me = null;
let roomId = null;
let withHuman = false; // after a hand-off the bot is silent: no "assistant is typing"
let botTyping = null;
let unreadAgentMessage = null; // the newest agent message this customer has not receipted yet
let panelShown = true; // the widget's panel is open (the full page always is)
let unseen = 0; // replies that arrived while not in view: the widget's launcher shows the count
if (location.pathname.endsWith("/embed")) {
  document.body.classList.add("embedded");
  // Escape inside the panel closes it: the widget on the site's page hears this (nothing else).
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") tellWidget("supportloop:close");
  });
  // The widget hands a fresh site token by changing the fragment (e.g. after the chat token
  // expired): start again with it.
  window.addEventListener("hashchange", () => location.reload());
  // A closed panel is still a "visible" document: the widget says when it opens and closes, so
  // nothing is receipted as read while the customer cannot see it.
  window.addEventListener("message", (event) => {
    if (event.source !== window.parent || !event.data) return;
    if (event.data.type === "supportloop:shown" || event.data.type === "supportloop:hidden") {
      panelShown = event.data.type === "supportloop:shown";
      inView();
    }
  });
}

function show(node) {
  messages.append(node);
  messages.scrollTop = messages.scrollHeight;
}

function notice(text) {
  show(element("div", { class: "notice" }, text));
}

function setState(bubble, state) {
  const label = { sending: "Sending…", sent: "Sent", read: "Read" }[state];
  bubble.dataset.state = state;
  const badge = bubble.querySelector(".delivery");
  badge.textContent = label;
  badge.setAttribute("aria-label", `Message ${label.replace("…", "").toLowerCase()}`);
}

function bubbleFor(kind, content, ts, author) {
  const meta = element("div", { class: "meta" }, author, " · ", timeOf(ts));
  return element("div", { class: `message ${kind}` }, element("div", { class: "text" }, content), meta);
}

function mine(item) {
  const bubble = bubbleFor("mine", item.content, null, "You");
  bubble.dataset.clientMsgId = item.client_msg_id;
  bubble.querySelector(".meta").append(" · ", element("span", { class: "delivery" }));
  setState(bubble, "sending");
  pending.set(item.client_msg_id, bubble);
  show(bubble);
}

function showMessage(data) {
  if (bubbles.has(data.message_id)) return;
  if (data.sender_id === me) {
    const bubble = pending.get(data.client_msg_id);
    if (bubble) {
      pending.delete(data.client_msg_id);
      bubble.dataset.messageId = data.message_id;
      bubble.querySelector("time").replaceWith(timeOf(data.ts));
      if (bubble.dataset.state === "sending") setState(bubble, "sent");
      bubbles.set(data.message_id, bubble);
      return;
    }
  }
  const kind = data.sender_id === me ? "mine" : data.role;
  const author = kind === "mine" ? "You" : data.role === "bot" ? "Assistant" : "Support agent";
  const bubble = bubbleFor(kind, data.content, data.ts, author);
  bubble.dataset.messageId = data.message_id;
  if (kind === "mine") {
    bubble.querySelector(".meta").append(" · ", element("span", { class: "delivery" }));
    setState(bubble, "sent");
  }
  bubbles.set(data.message_id, bubble);
  show(bubble);
  if (kind !== "mine" && !chat.replaying && !seen()) tellWidget("supportloop:unread", { count: ++unseen });
  if (data.role === "agent") {
    unreadAgentMessage = data.message_id;
    sendReceipt();
  }
}

function seen() {
  return panelShown && document.visibilityState === "visible";
}

// The agent sees that the customer read their message: only while the page is in view, and
// after a replay one receipt for the newest (it covers everything before), not one per message.
function sendReceipt() {
  if (!unreadAgentMessage || chat.replaying || !seen()) return;
  chat.send("read_receipt", { message_id: unreadAgentMessage });
  unreadAgentMessage = null;
}

function inView() {
  if (!seen()) return;
  if (unseen) tellWidget("supportloop:unread", { count: (unseen = 0) });
  sendReceipt();
}
document.addEventListener("visibilitychange", inView);

function assistantTyping(on) {
  clearTimeout(botTyping);
  if (on && !withHuman) {
    typing.textContent = "Assistant is typing…";
    botTyping = setTimeout(() => { typing.textContent = ""; }, 8000);
  } else if (!on && typing.textContent.startsWith("Assistant")) {
    typing.textContent = "";
  }
}

function askForRating(ratedRequestId) {
  const row = element("div", { class: "notice rating", role: "group", "aria-label": "Rate this conversation",
    "data-request-id": ratedRequestId }, "How did we do? ");
  for (let stars = 1; stars <= 5; stars += 1) {
    row.append(element("button", {
      type: "button", "data-rating": String(stars), "aria-label": `${stars} out of 5`,
      onclick: () => { chat.send("rate_support", { request_id: ratedRequestId, rating: stars }); row.remove(); },
    }, "★".repeat(stars)));
  }
  show(row);
}

const handlers = {
  welcome: (data) => { me = data.user_id; },
  resume_complete: sendReceipt,
  status: (status, detail) => {
    banner.hidden = status === "online";
    banner.className = `connection-banner ${status}`;
    banner.textContent = status === "reconnecting" ? `Connection lost. Reconnecting ${detail || ""}…`
      : status === "connecting" ? "Connecting…" : status === "unauthorised" ? "Signed out." : "";
  },
  ack: (data) => {
    const bubble = pending.get(data.client_msg_id);
    if (bubble) setState(bubble, "sent");
    assistantTyping(true);
  },
  support_request_created: (data) => {
    roomId = data.room_id;
    // A new conversation: an earlier one left unrated is not asked about any more.
    for (const row of messages.querySelectorAll(".rating")) row.remove();
  },
  new_message: (data) => { if (data.sender_id !== me) typing.textContent = ""; showMessage(data); },
  bot_reply: (data) => {
    assistantTyping(false);
    showMessage(data);
    if (data.action === "handoff") {
      withHuman = true;
      notice("A human agent has been asked to join.");
    } else if (data.action === "resolved") {
      // The closing message follows the resolution event: the question comes after it.
      const rating = [...messages.querySelectorAll(".rating")].at(-1);
      if (rating) show(rating);
    }
  },
  read_receipt: (data) => {
    // Read up to that message: everything the customer sent before it was read too.
    const read = bubbles.get(data.message_id);
    if (!read) return;
    for (const bubble of messages.querySelectorAll(".message.mine[data-state]")) {
      setState(bubble, "read");
      if (bubble === read) break;
    }
  },
  typing: (data) => {
    typing.textContent = data.is_typing ? "Support agent is typing…" : "";
  },
  member_joined: (data) => {
    if (data.role === "agent") { withHuman = true; notice("A support agent joined the conversation"); }
  },
  support_request_escalated: () => notice("Your request was escalated."),
  support_request_resolved: (data) => {
    notice(`Resolved${data.resolution ? `: ${data.resolution}` : ""}`);
    askForRating(data.request_id);
    roomId = null;
    withHuman = false;
  },
  support_rated: (data) => {
    // Replayed after a reload: a conversation already rated asks no more.
    messages.querySelector(`.rating[data-request-id="${CSS.escape(data.request_id)}"]`)?.remove();
    notice(`Thanks for rating us ${data.rating}/5`);
  },
  error: (data) => notice(`⚠ ${data.message}`),
};

const chat = await startChat("customer", handlers);

document.getElementById("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  const content = input.value.trim();
  if (!content) return;
  mine(chat.say(content, roomId));
  input.value = "";
});

reportTyping(chat, document.getElementById("text"), () => roomId);

document.getElementById("human").addEventListener("click", () => {
  chat.send("support_request", { description: "customer pressed 'Talk to a human'" });
});
