// n > 1 choices side by side: one column each (the first choice is the answer), each with its finish reason and a
// copy button. On a narrow output the columns become tabs (a CSS container query hides the tab list when there is
// room for columns; see panel.css), so choices stay comparable at any width.
import { copyButton } from "./clipboard.js";

// Draws `choices` (readField's list: {index, text, finish_reason}) into `box`; `renderInto(node, text)` draws one
// choice's Markdown. Tabs follow the WAI-ARIA pattern: arrow keys move between them.
// https://www.w3.org/WAI/ARIA/apg/patterns/tabs/
export function renderChoices(box, choices, renderInto) {
  const doc = box.ownerDocument;
  box.replaceChildren();
  box.hidden = choices.length < 2;
  if (box.hidden) return;
  const tabs = box.appendChild(doc.createElement("div"));
  tabs.className = "elk-choice-tabs";
  tabs.setAttribute("role", "tablist");
  const columns = box.appendChild(doc.createElement("div"));
  columns.className = "elk-choice-columns";
  const pairs = choices.map((choice, position) => {
    const title = `choice ${choice.index}${choice.finish_reason ? ` · ${choice.finish_reason}` : ""}`;
    const tab = tabs.appendChild(doc.createElement("button"));
    tab.type = "button";
    tab.className = "elk-choice-tab";
    tab.setAttribute("role", "tab");
    tab.textContent = title;
    const column = columns.appendChild(doc.createElement("div"));
    column.className = "elk-choice";
    column.setAttribute("role", "tabpanel");
    const head = column.appendChild(doc.createElement("div"));
    head.className = "elk-choice-title";
    head.appendChild(doc.createElement("span")).textContent = title;
    head.appendChild(copyButton(doc, "Copy", `Copy choice ${choice.index}`, () => choice.text));
    const body = column.appendChild(doc.createElement("div"));
    body.className = "elk-choice-body jp-RenderedHTMLCommon";
    renderInto(body, choice.text);
    tab.addEventListener("click", () => select(position));
    return { tab, column };
  });
  function select(position) {
    pairs.forEach(({ tab, column }, i) => {
      tab.setAttribute("aria-selected", String(i === position));
      tab.tabIndex = i === position ? 0 : -1;
      column.toggleAttribute("data-selected", i === position);
    });
  }
  tabs.addEventListener("keydown", (event) => {
    const at = pairs.findIndex(({ tab }) => tab === doc.activeElement);
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (at < 0 || !step) return;
    event.preventDefault();
    const next = (at + step + pairs.length) % pairs.length;
    select(next);
    pairs[next].tab.focus();
  });
  select(0);
}
