// A gateway's call events: refills the rows every 2 seconds from the API
// address in the table's data-src (text only, never markup).
'use strict';

async function refresh() {
  try {
    const table = document.getElementById('events');
    const r = await fetch(table.dataset.src, {credentials: 'same-origin'});
    if (!r.ok) return;
    const rows = document.getElementById('event-rows');
    const fresh = document.createElement('tbody');
    fresh.id = 'event-rows';
    for (const e of await r.json()) {
      const tr = document.createElement('tr');
      for (const v of [e.received_at, e.gateway_clock, e.call_ref, e.port, e.event, e.dialed, e.caller_id, e.info, e.pstn_port]) {
        const td = document.createElement('td');
        td.textContent = v === null || v === undefined ? '' : String(v);
        tr.appendChild(td);
      }
      fresh.appendChild(tr);
    }
    rows.replaceWith(fresh);
  } catch (_) {}
}
setInterval(refresh, 2000);
