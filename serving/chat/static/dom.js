// DOM helpers shared by the pages, and the panel's messages to the widget on the site's page.

export const EMBEDDED = location.pathname.endsWith("/embed"); // the widget's panel on a site's page

// The widget (widget.js) on the site's page hears these; nothing is said to a page not framing us.
export function tellWidget(type, extra = {}) {
  if (EMBEDDED && window.parent !== window) window.parent.postMessage({ ...extra, type }, "*");
}

export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}
