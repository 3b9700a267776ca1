/**
 * Markdown for model output, which is untrusted: raw HTML is off (it shows as text), links are
 * limited to http, https and file/relative targets (and open through the extension), images
 * render as inert text (never an <img>), code is highlighted by highlight.js.
 */
import MarkdownIt from 'markdown-it';
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import c from 'highlight.js/lib/languages/c';
import cpp from 'highlight.js/lib/languages/cpp';
import css from 'highlight.js/lib/languages/css';
import diff from 'highlight.js/lib/languages/diff';
import go from 'highlight.js/lib/languages/go';
import java from 'highlight.js/lib/languages/java';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import python from 'highlight.js/lib/languages/python';
import rust from 'highlight.js/lib/languages/rust';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';
import { classifyLink, escapeHtml, hljsName } from '../src/protocol/webview';

const languages = { bash, c, cpp, css, diff, go, java, javascript, json, python, rust, typescript, xml, yaml };
for (const [name, lang] of Object.entries(languages)) hljs.registerLanguage(name, lang);

/** The highlight.js language for a VS Code language id or a fence tag, when it is registered. */
export function hljsLanguage(id: string | undefined): string | undefined {
  if (!id) return undefined;
  const name = hljsName(id);
  return hljs.getLanguage(name) ? name : undefined;
}

/** Highlighted HTML for `code` (escaped plain text when the language is unknown). */
export function highlight(code: string, languageId: string | undefined): string {
  const lang = hljsLanguage(languageId);
  if (!lang) return escapeHtml(code);
  try {
    return hljs.highlight(code, { language: lang, ignoreIllegals: true }).value;
  } catch {
    return escapeHtml(code);
  }
}

const COPY_ICON =
  '<svg class="icon" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true" focusable="false"><path d="M5 5h8v9H5zM3 11V2h7"/></svg>';

function createMarkdown() {
  const md = new MarkdownIt({ html: false, linkify: true, typographer: false, breaks: false });

  // Only http(s) and file/relative links become links; the rest stay text.
  md.validateLink = (url: string) => classifyLink(url).kind !== 'rejected';

  md.renderer.rules.link_open = (tokens, idx, options, _env, self) => {
    const token = tokens[idx];
    const href = token.attrGet('href') ?? '';
    token.attrSet('data-href', href);
    token.attrSet('title', href);
    token.attrSet('class', 'md-link');
    return self.renderToken(tokens, idx, options);
  };

  // Images never load: they render as text naming the image and where it would have come from.
  md.renderer.rules.image = (tokens, idx) => {
    const token = tokens[idx];
    const alt = token.children ? md.renderer.renderInlineAsText(token.children, md.options, {}) : token.content;
    const src = String(token.attrGet('src') ?? '');
    return `<span class="md-image" title="Images in model output are not loaded">[image: ${escapeHtml(alt || 'untitled')}${src ? ` (${escapeHtml(src)})` : ''}]</span>`;
  };

  md.renderer.rules.fence = (tokens, idx) => {
    const token = tokens[idx];
    const info = token.info.trim();
    const langId = info.split(/\s+/)[0] ?? '';
    const lang = hljsLanguage(langId);
    const body = highlight(token.content, lang);
    const label = langId ? `<span class="code-lang">${escapeHtml(langId)}</span>` : '<span class="code-lang"></span>';
    return (
      `<div class="code-block">` +
      `<div class="code-head">${label}<vscode-button appearance="icon" data-action="copy-code" aria-label="Copy code" title="Copy code">${COPY_ICON}</vscode-button></div>` +
      `<pre tabindex="0" aria-label="${escapeHtml(langId || 'code')} code"><code class="hljs${lang ? ` language-${lang}` : ''}">${body}</code></pre>` +
      `</div>\n`
    );
  };

  md.renderer.rules.code_block = (tokens, idx) =>
    `<div class="code-block"><pre tabindex="0" aria-label="code"><code class="hljs">${escapeHtml(tokens[idx].content)}</code></pre></div>\n`;

  return md;
}

const md = createMarkdown();

/** Markdown → HTML that is safe to assign to innerHTML: no raw HTML, no scripts, no loads. */
export function renderMarkdown(text: string): string {
  return md.render(text);
}
