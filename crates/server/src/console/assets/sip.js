// The registrations page reloads itself every 3 seconds, as the seed's
// Register Status does, while it shows today (UTC).
'use strict';

(function () {
  const day = document.getElementById('day');
  if (day && day.value === new Date().toISOString().slice(0, 10)) {
    setTimeout(function () { location.reload(); }, 3000);
  }
})();
