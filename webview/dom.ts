/** Small DOM helpers. Text always goes in through `textContent`, never through HTML. */

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined>;

/** `h('button', { class: 'x', 'aria-label': 'Close' }, 'text', child)`. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K];
export function h(tag: string, attrs?: Attrs | null, ...children: Child[]): HTMLElement;
export function h(tag: string, attrs?: Attrs | null, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, ...children);
  return el;
}

export function setAttrs(el: Element, attrs?: Attrs | null): void {
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) el.removeAttribute(k);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

export function append(el: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  }
}

const SVG = 'http://www.w3.org/2000/svg';

/** Outline icons, 16×16, drawn with the current text colour. */
const ICONS = {
  chevron: 'M6 4l4 4-4 4',
  check: 'M3 8.5l3 3 7-7',
  close: 'M4 4l8 8M12 4l-8 8',
  diff: 'M4 2v6M1 5h6M9 12h6M3 14h4M11 2h2a2 2 0 0 1 2 2v4',
  save: 'M8 2v8M5 7l3 3 3-3M3 12v2h10v-2',
  trash: 'M3 4h10M6 4V2.5h4V4M4.5 4l.7 9.5h5.6l.7-9.5',
  copy: 'M5 5h8v9H5zM3 11V2h7',
  comment: 'M2 3h12v8H7l-3 3v-3H2z',
  send: 'M2 8h11M9 4l4 4-4 4',
  stop: 'M4 4h8v8H4z',
  warning: 'M8 2l6.5 12h-13zM8 6.5v3.5M8 12v.5',
} as const;

export type IconName = keyof typeof ICONS;

export function icon(name: IconName): SVGSVGElement {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('width', '16');
  svg.setAttribute('height', '16');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', `icon icon-${name}`);
  const p = document.createElementNS(SVG, 'path');
  p.setAttribute('d', ICONS[name]);
  svg.appendChild(p);
  return svg;
}

/** A toolkit button. `appearance`: primary, secondary or icon. */
export function button(
  label: string,
  opts: { appearance?: 'primary' | 'secondary' | 'icon'; icon?: IconName; title?: string; className?: string; onClick: () => void },
): HTMLElement {
  const b = h('vscode-button', {
    appearance: opts.appearance ?? 'secondary',
    class: opts.className,
    title: opts.title ?? (opts.appearance === 'icon' ? label : undefined),
    'aria-label': opts.appearance === 'icon' ? label : undefined,
  });
  if (opts.icon) {
    const i = icon(opts.icon);
    if (opts.appearance !== 'icon') i.setAttribute('slot', 'start');
    b.appendChild(i);
  }
  if (opts.appearance !== 'icon') b.appendChild(document.createTextNode(label));
  b.addEventListener('click', () => {
    if (!b.hasAttribute('disabled')) opts.onClick();
  });
  return b;
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '0.0 s';
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  return `${m} min ${String(s).padStart(2, '0')} s`;
}

export function plural(n: number, word: string): string {
  return `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;
}
