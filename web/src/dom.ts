/** Tiny DOM helpers: elements built from text, never from HTML strings. */

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing`);
  return e as T;
}

/** Fills a table: caption, header row, body rows (cells as text or nodes). */
export function fillTable(table: HTMLTableElement, caption: string, head: string[], rows: HTMLTableRowElement[]): void {
  table.replaceChildren(
    el('caption', {}, caption),
    el('thead', {}, el('tr', {}, ...head.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, ...rows),
  );
}

export function row(cells: (Node | string)[], attrs: Record<string, string> = {}): HTMLTableRowElement {
  return el('tr', attrs, ...cells.map((c, i) => (i === 0 ? el('th', { scope: 'row' }, c) : el('td', {}, c))));
}

/** A colour swatch (set through CSSOM: the page's CSP refuses style attributes). */
export function swatch(colour: string): HTMLSpanElement {
  const s = el('span', { class: 'swatch', 'aria-hidden': 'true' });
  s.style.setProperty('--c', colour);
  return s;
}
