// Copy buttons: a real <button> (focusable, Enter and Space work), copying plain text that the caller picks (the
// source Markdown or the code's own text, never rendered HTML), with a short "Copied" acknowledgement.

// The async Clipboard API where the page may use it (a secure context, permission granted), else the older
// execCommand path on a hidden textarea, which works from a click in most other pages.
export async function copyText(window, text) {
  try {
    await window.navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = window.document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.cssText = "position:fixed;top:0;left:0;opacity:0;";
    window.document.body.appendChild(area);
    area.select();
    try {
      return window.document.execCommand("copy");
    } catch {
      return false;
    } finally {
      area.remove();
    }
  }
}

// A button labelled `label` that copies `text()` when pressed.
export function copyButton(document, label, title, text) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "elk-copy";
  button.textContent = label;
  button.title = title;
  button.setAttribute("aria-label", title);
  let timer = 0;
  button.addEventListener("click", async (event) => {
    event.stopPropagation();
    const ok = await copyText(button.ownerDocument.defaultView, text()); // by now in the page's document
    button.textContent = ok ? "Copied" : "Copy failed";
    button.dataset.copied = ok ? "yes" : "no";
    clearTimeout(timer);
    timer = setTimeout(() => {
      button.textContent = label;
      delete button.dataset.copied;
    }, 1500);
  });
  return button;
}
