// A code editor without dependencies: a plain <textarea> (the browser's editing, undo, IME and
// accessibility), a line-number gutter carrying a marker per line with a problem, and an
// overlay behind the text that underlines each diagnostic's span. The three scroll together.

import { lineStarts, span } from "./model.js";

const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export class Editor {
  /** @param {HTMLElement} host  @param {{onInput: () => void, onCursor?: (line: number, column: number) => void}} hooks */
  constructor(host, { onInput, onCursor }) {
    this.host = host;
    host.classList.add("editor");
    host.innerHTML = `<div class="gutter" aria-hidden="true"></div><div class="code"><pre class="overlay" aria-hidden="true"></pre><textarea spellcheck="false" autocapitalize="off" autocomplete="off" wrap="off"></textarea></div>`;
    this.gutter = host.querySelector(".gutter");
    this.overlay = host.querySelector(".overlay");
    this.textarea = host.querySelector("textarea");
    this.diagnostics = [];
    this.onCursor = onCursor ?? (() => {});
    this.textarea.addEventListener("input", () => {
      this.render();
      onInput();
    });
    this.textarea.addEventListener("scroll", () => this.syncScroll());
    for (const ev of ["keyup", "click", "select", "focus"]) this.textarea.addEventListener(ev, () => this.reportCursor());
    this.textarea.addEventListener("keydown", (e) => this.keydown(e));
    this.gutter.addEventListener("click", (e) => {
      const row = e.target.closest("[data-line]");
      if (row) this.goto(Number(row.dataset.line), 1);
    });
  }

  get value() {
    return this.textarea.value;
  }

  set value(text) {
    this.textarea.value = text;
    this.diagnostics = [];
    this.render();
    this.textarea.scrollTop = 0;
    this.syncScroll();
  }

  /** Show these diagnostics (`{severity, code, message, location}`) in this text. */
  mark(diagnostics) {
    this.diagnostics = diagnostics;
    this.render();
  }

  render() {
    const text = this.textarea.value;
    const lines = lineStarts(text).length;
    const byLine = new Map();
    const spans = [];
    for (const d of this.diagnostics) {
      const s = span(d.location, text);
      spans.push({ ...s, d });
      const prev = byLine.get(s.line);
      if (!prev || (prev.severity !== "error" && d.severity === "error")) byLine.set(s.line, d);
    }
    let rows = "";
    for (let i = 1; i <= lines; i++) {
      const d = byLine.get(i);
      rows += d
        ? `<div data-line="${i}" class="marker ${d.severity}" title="${esc(`${d.code}: ${d.message}`)}">${i}</div>`
        : `<div data-line="${i}">${i}</div>`;
    }
    this.gutter.innerHTML = `${rows}<div class="pad"></div>`;
    // Overlay: the same text (invisible) with each span in a <mark>; overlapping spans are cut.
    spans.sort((a, b) => a.start - b.start);
    let html = "";
    let at = 0;
    for (const s of spans) {
      const start = Math.max(s.start, at);
      if (s.end <= start) continue;
      html += esc(text.slice(at, start));
      html += `<mark class="${s.d.severity}" data-code="${esc(s.d.code)}" data-line="${s.line}">${esc(text.slice(start, s.end))}</mark>`;
      at = s.end;
    }
    html += `${esc(text.slice(at))}\n`;
    this.overlay.innerHTML = html;
    this.syncScroll();
  }

  syncScroll() {
    this.overlay.style.transform = `translate(${-this.textarea.scrollLeft}px, ${-this.textarea.scrollTop}px)`;
    this.gutter.scrollTop = this.textarea.scrollTop;
  }

  /** The cursor's 1-based line and column. */
  cursor() {
    const text = this.textarea.value.slice(0, this.textarea.selectionStart);
    const nl = text.lastIndexOf("\n");
    return { line: text.split("\n").length, column: text.length - nl };
  }

  reportCursor() {
    const { line, column } = this.cursor();
    this.host.dataset.cursor = `${line}:${column}`;
    this.onCursor(line, column);
  }

  /** Put the cursor at line:column (1-based), scrolled into view, and focus the editor. */
  goto(line, column) {
    const starts = lineStarts(this.textarea.value);
    const l = Math.min(Math.max(line, 1), starts.length);
    const lineEnd = l < starts.length ? starts[l] - 1 : this.textarea.value.length;
    const pos = Math.min(starts[l - 1] + Math.max(column - 1, 0), lineEnd);
    this.textarea.focus({ preventScroll: true });
    this.textarea.setSelectionRange(pos, pos);
    const lh = parseFloat(getComputedStyle(this.textarea).lineHeight) || 18;
    const top = (l - 1) * lh;
    const ta = this.textarea;
    if (top < ta.scrollTop || top + lh > ta.scrollTop + ta.clientHeight) ta.scrollTop = Math.max(top - ta.clientHeight / 3, 0);
    this.syncScroll();
    this.reportCursor();
  }

  keydown(e) {
    const ta = this.textarea;
    if (e.key === "Tab" && !e.ctrlKey && !e.metaKey && !e.altKey) {
      // Two spaces (YAML has no tabs); Shift+Tab outdents the current line.
      e.preventDefault();
      const { selectionStart: s, selectionEnd: end, value } = ta;
      if (e.shiftKey) {
        const ls = value.lastIndexOf("\n", s - 1) + 1;
        const cut = value.startsWith("  ", ls) ? 2 : value.startsWith(" ", ls) ? 1 : 0;
        if (cut) {
          ta.setSelectionRange(ls, ls + cut);
          document.execCommand("insertText", false, "");
          ta.setSelectionRange(Math.max(s - cut, ls), Math.max(end - cut, ls));
        }
      } else {
        document.execCommand("insertText", false, "  ");
      }
    } else if (e.key === "Enter" && !e.ctrlKey && !e.metaKey) {
      // Keep the current line's indentation (one more level after a `:` that ends the line).
      const { selectionStart: s, value } = ta;
      const ls = value.lastIndexOf("\n", s - 1) + 1;
      const line = value.slice(ls, s);
      let indent = /^\s*(- )?/.exec(line)[0].replace("- ", "  ");
      if (/:\s*$/.test(line)) indent += "  ";
      e.preventDefault();
      document.execCommand("insertText", false, `\n${indent}`);
    }
  }
}
