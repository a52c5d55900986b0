/**
 * The dialog of signaling-consent.ts: which servers a share link names, what using
 * them would reveal, and the choice. Plain DOM (the UI's chunk is not loaded yet at
 * this point of the boot); styled by src/boot.css.
 */

/**
 * Shows the servers in a modal dialog and resolves with the user's answer: true to
 * connect through them, false to use the page's own server instead (also on Escape).
 */
export function askSignalingConsent(servers: readonly string[], doc: Document): Promise<boolean> {
  const dialog = doc.createElement('dialog');
  dialog.className = 'signaling-consent';
  dialog.setAttribute('aria-labelledby', 'signaling-consent-title');
  const title = doc.createElement('h2');
  title.id = 'signaling-consent-title';
  title.textContent = servers.length === 1 ? 'Connect through another signaling server?' : 'Connect through other signaling servers?';
  const intro = doc.createElement('p');
  intro.textContent = 'This link asks this tab to find its peers through a server other than the one that served this page:';
  const list = doc.createElement('ul');
  for (const s of servers) {
    const item = doc.createElement('li');
    const code = doc.createElement('code');
    code.textContent = s;
    item.append(code);
    list.append(item);
  }
  const warning = doc.createElement('p');
  warning.textContent =
    "That server would learn this tab's network addresses, its cluster and its node id, and could read or alter the messages that set up its connections. Continue only if you trust whoever sent the link.";
  const buttons = doc.createElement('div');
  buttons.className = 'signaling-consent-buttons';
  const decline = doc.createElement('button');
  decline.type = 'button';
  decline.textContent = "Use this site's server";
  const accept = doc.createElement('button');
  accept.type = 'button';
  accept.textContent = 'Connect through it';
  buttons.append(decline, accept);
  dialog.append(title, intro, list, warning, buttons);
  doc.body.append(dialog);
  return new Promise((resolve) => {
    const done = (answer: boolean): void => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    accept.addEventListener('click', () => done(true));
    decline.addEventListener('click', () => done(false));
    dialog.addEventListener('cancel', (e) => {
      e.preventDefault();
      done(false);
    });
    dialog.showModal();
    decline.focus(); // the safe answer is the default
  });
}
