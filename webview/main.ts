// Placeholder; the Reasoning view is built by the webview issue.

document.body.textContent = 'R1 Coder';
