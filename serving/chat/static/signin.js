// Signing in: a token from the URL, localStorage, the widget's site token (exchanged), or the
// local dev login form; without one, how to get one.
import { EMBEDDED, element, tellWidget } from "/chat/static/dom.js";

// A token from ?token= (or #token=: a fragment never reaches server logs), localStorage, or the
// local dev login form (CHAT_DEV_LOGIN=true); else null. The widget's panel (/chat/embed) gets a
// site token in #widget_token= and exchanges it; it keeps the chat token in memory only, so the
// next person signed in on that site (a shared computer) never inherits this one's conversation.
export async function obtainToken(role, storageKey) {
  const params = new URLSearchParams(location.search);
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (EMBEDDED) {
    const siteToken = fragment.get("widget_token");
    return siteToken ? exchangeSiteToken(siteToken) : fragment.get("token");
  }
  const fromUrl = params.get("token") || fragment.get("token");
  if (fromUrl) {
    localStorage.setItem(`${storageKey}:token`, fromUrl);
    return fromUrl;
  }
  const stored = localStorage.getItem(`${storageKey}:token`);
  if (stored) return stored;
  if (!(await devLoginEnabled())) return null; // no form for a login that cannot work
  const token = await devLoginForm(role);
  localStorage.setItem(`${storageKey}:token`, token);
  return token;
}

// POST /chat/widget/session: the site's short-lived token for a chat token; null if refused.
async function exchangeSiteToken(siteToken) {
  const response = await fetch("/chat/widget/session", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token: siteToken }),
    cache: "no-store",
  }).catch(() => null);
  if (response && response.ok) return (await response.json()).token;
  const reason = response ? (await response.json().catch(() => ({}))).error : "no answer";
  console.warn(`widget sign-in refused: ${reason}`);
  return null;
}

// A small form (no window.prompt): a name, then a token from POST /chat/dev/token.
function devLoginForm(role) {
  const input = element("input", {
    id: "dev-login-name", name: "user", required: "", maxlength: "128", autocomplete: "username",
    pattern: "[A-Za-z0-9_.@\\-]+", value: role === "agent" ? "agent-1" : "customer-1",
  });
  const problem = element("div", { class: "login-error", role: "alert" });
  const form = element("form", { id: "dev-login", class: "dev-login", "aria-label": "Local dev login" },
    element("label", { for: "dev-login-name" }, `Your ${role} name (local dev login)`),
    input, element("button", { type: "submit" }, "Sign in"), problem,
    element("div", { class: "note" }, "Only for local demos: anyone here can sign in as anyone."));
  document.getElementById("messages").replaceChildren(form);
  const badge = document.getElementById("status");
  badge.className = "status unauthorised";
  badge.textContent = "signed out";
  input.focus();
  return new Promise((resolve) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      problem.textContent = "";
      const response = await fetch("/chat/dev/token", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ user_id: input.value.trim(), role }),
      }).catch(() => null);
      if (!response || !response.ok) {
        problem.textContent = "Sign-in refused: letters, digits and . _ @ - only.";
        return;
      }
      form.remove();
      resolve((await response.json()).token);
    });
  });
}

async function devLoginEnabled() {
  try {
    const response = await fetch("/chat/dev/login", { cache: "no-store" });
    return response.ok && (await response.json()).enabled === true;
  } catch {
    return false;
  }
}

// Without a token the page says how to get one instead of failing silently.
export function showSignInHelp(role, statusBadge) {
  statusBadge.className = "status unauthorised";
  statusBadge.textContent = "signed out";
  if (EMBEDDED) {
    tellWidget("supportloop:signed-out"); // a widget with data-token-url fetches a fresh token
    document.getElementById("messages").replaceChildren(
      element("div", { class: "notice signin" }, "Please sign in on this site to chat with us."));
    return;
  }
  const page = role === "agent" ? "/chat/agent" : "/chat/";
  const help = element(
    "div",
    { class: "notice signin" },
    "Sign-in needed: open this page with ?token=… (",
    element("code", {}, `make token USER=you ROLE=${role}`),
    ` prints one: ${location.origin}${page}?token=…). For a local demo only: `,
    element("code", {}, "make serve CHAT_DEV_LOGIN=true"),
    ".",
  );
  document.getElementById("messages").replaceChildren(help);
}
