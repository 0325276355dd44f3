// The live status: fills every element whose id is a key of /live.json,
// and the table of calls in progress, every 3 seconds.
'use strict';

async function refresh() {
  try {
    const r = await fetch('/live.json', {credentials: 'same-origin'});
    if (!r.ok) return;
    const s = await r.json();
    for (const [k, v] of Object.entries(s)) {
      const el = document.getElementById(k);
      if (el && typeof v !== 'object') el.textContent = v;
    }
    const body = document.getElementById('active-rows');
    body.replaceChildren(...s.active_calls.map(c => {
      const tr = document.createElement('tr');
      for (const v of [c.started_at, c.sender, c.kind + (c.direction ? ' ' + c.direction : ''),
                       c.caller || '', c.dialed || '', c.destination || '', c.state, c.answered_at || '', c.legs]) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.appendChild(td);
      }
      const end = document.getElementById('force-end-template').content.cloneNode(true);
      end.querySelector('form').action = '/calls/' + encodeURIComponent(c.id) + '/end';
      const td = document.createElement('td');
      td.appendChild(end);
      tr.appendChild(td);
      return tr;
    }));
  } catch (e) {}
}
setInterval(refresh, 3000);
