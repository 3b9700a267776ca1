// Stands in for VS Code's webview host inside the test page (installed with addInitScript, so it
// runs before the page's own scripts and outside its CSP, as VS Code's own preload does).
// - acquireVsCodeApi() works once, like VS Code's; postMessage goes to the Node test through the
//   exposed binding `__r1HostReceive`; getState/setState live in sessionStorage, so they survive
//   a reload of the page, like a webview's state survives a reload of the webview.
// - Every CSP violation is recorded in window.__cspViolations.
(() => {
  window.__cspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__cspViolations.push({ directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample, at: `${e.sourceFile}:${e.lineNumber}:${e.columnNumber}` });
  });
  window.__posted = [];
  let acquired = false;
  window.acquireVsCodeApi = () => {
    if (acquired) throw new Error('An instance of the VS Code API has already been acquired');
    acquired = true;
    return Object.freeze({
      postMessage(message) {
        const copy = JSON.parse(JSON.stringify(message));
        window.__posted.push(copy);
        void window.__r1HostReceive(copy);
      },
      getState() {
        const s = sessionStorage.getItem('vscode-webview-state');
        return s === null ? undefined : JSON.parse(s);
      },
      setState(state) {
        sessionStorage.setItem('vscode-webview-state', JSON.stringify(state));
        return state;
      },
    });
  };
})();
