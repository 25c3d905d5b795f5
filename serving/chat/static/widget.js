// The support chat widget: one script tag on any site adds a launcher button and a chat panel.
//
//   <script src="https://support.example.com/chat/widget.js" data-token-url="/support/chat-token"
//           defer></script>
//
// The panel is an iframe of /chat/embed on the chat server's origin, so the site's scripts and
// styles never touch the conversation, and the server's CSP (frame-ancestors, from
// CHAT_WIDGET_ORIGINS) decides which sites may show it. Signing in: the site's backend signs a
// short-lived *site token* for its signed-in customer with the site's own key (CHAT_WIDGET_KEYS,
// never CHAT_JWT_SECRET); the widget fetches it from data-token-url (the site's endpoint, with the
// site's cookies) when the panel opens and again when the panel says it is signed out, or takes
// data-token (signed into the page). It travels in the URL fragment, never sent to a server,
// and the panel exchanges it for a chat token (POST /chat/widget/session).
(function () {
  "use strict";
  const script = document.currentScript;
  if (!script || window.__supportChatWidget) return;
  window.__supportChatWidget = true;
  const origin = new URL(script.src, location.href).origin;
  const tokenUrl = script.dataset.tokenUrl || "";
  let token = script.dataset.token || "";
  let refreshed = 0;
  const title = script.dataset.title || "Support chat";

  const style = document.createElement("style");
  style.textContent = `
    .slw-launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; width: 56px;
      height: 56px; border-radius: 50%; border: none; background: #2156d9; color: #fff;
      font: 600 24px/1 system-ui, sans-serif; cursor: pointer; box-shadow: 0 4px 14px rgba(0,0,0,.25); }
    .slw-badge { position: absolute; top: -4px; right: -4px; min-width: 20px; height: 20px;
      border-radius: 10px; background: #d93025; color: #fff; font: 600 12px/20px system-ui, sans-serif; }
    .slw-launcher:focus-visible { outline: 3px solid #9bb6ff; outline-offset: 2px; }
    .slw-panel { position: fixed; right: 20px; bottom: 88px; z-index: 2147483000; width: 380px;
      max-width: calc(100vw - 40px); height: 560px; max-height: calc(100vh - 110px);
      border-radius: 14px; overflow: hidden; box-shadow: 0 8px 30px rgba(0,0,0,.25); background: #fff; }
    .slw-panel[hidden] { display: none; }
    .slw-panel iframe { width: 100%; height: 100%; border: 0; }`;
  document.head.append(style);

  const panel = document.createElement("div");
  panel.className = "slw-panel";
  panel.id = "support-chat-panel";
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", title);

  const launcher = document.createElement("button");
  launcher.type = "button";
  launcher.className = "slw-launcher";
  launcher.setAttribute("aria-controls", panel.id);
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-label", `Open ${title.toLowerCase()}`);
  launcher.textContent = "💬";

  // A fresh site token from the site's own backend (same origin as this page, its cookies).
  async function siteToken() {
    if (!tokenUrl) return token;
    try {
      const response = await fetch(tokenUrl, { credentials: "same-origin", cache: "no-store",
        headers: { accept: "application/json" } });
      token = response.ok ? (await response.json()).token || "" : "";
    } catch {
      token = "";
    }
    return token;
  }

  async function load() {
    const fresh = await siteToken();
    frame.src = `${origin}/chat/embed${fresh ? `#widget_token=${encodeURIComponent(fresh)}` : ""}`;
  }

  let frame = null;
  let unread = 0; // replies the panel got while closed
  function label(open) {
    launcher.setAttribute("aria-expanded", String(open));
    const count = !open && unread ? ` (${unread} unread)` : "";
    launcher.setAttribute("aria-label", `${open ? "Close" : "Open"} ${title.toLowerCase()}${count}`);
    launcher.textContent = open ? "✕" : "💬";
    if (count) launcher.append(Object.assign(document.createElement("span"),
      { className: "slw-badge", textContent: String(unread) }));
  }

  function toggle(open) {
    panel.hidden = !open;
    if (frame) frame.contentWindow.postMessage({ type: open ? "supportloop:shown" : "supportloop:hidden" }, origin);
    label(open);
    if (open && !frame) { // loaded on first open: a closed widget costs the site nothing
      frame = document.createElement("iframe");
      frame.title = title;
      frame.allow = "clipboard-write";
      panel.append(frame);
      load();
    }
    if (open) frame.focus();
  }
  launcher.addEventListener("click", () => toggle(panel.hidden));
  window.addEventListener("message", (event) => { // only the panel's own origin is heard
    if (event.origin !== origin || !event.data) return;
    if (event.data.type === "supportloop:close") { // Escape pressed inside the panel
      toggle(false);
      launcher.focus();
    } else if (event.data.type === "supportloop:unread") {
      unread = Math.max(0, Math.min(99, Number(event.data.count) || 0));
      label(!panel.hidden);
    } else if (event.data.type === "supportloop:signed-out" && tokenUrl
      && Date.now() - refreshed > 30000) { // the chat token expired: once per 30 s, no loop
      refreshed = Date.now();
      load();
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !panel.hidden) { toggle(false); launcher.focus(); }
  });
  document.body.append(panel, launcher);
  window.SupportChat = { open: () => toggle(true), close: () => toggle(false) };
})();
