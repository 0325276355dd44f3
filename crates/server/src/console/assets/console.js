// What the console's pages did with inline handlers, which the
// Content-Security-Policy (script-src 'self') forbids:
//   data-print        a button that prints the page;
//   data-confirm="…"  a button, or a form, that asks before it is submitted;
//   data-autosubmit   a field that submits its form when it changes.
// Listeners on the document also serve elements added later (the live
// status's rows).
'use strict';

document.addEventListener('click', function (event) {
  const target = event.target instanceof Element ? event.target : null;
  if (!target) return;
  if (target.closest('[data-print]')) {
    event.preventDefault();
    window.print();
    return;
  }
  const button = target.closest('button[data-confirm], input[type=submit][data-confirm]');
  if (button && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
});

document.addEventListener('submit', function (event) {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm !== undefined
      && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

document.addEventListener('change', function (event) {
  const field = event.target;
  if (field instanceof Element && field.hasAttribute('data-autosubmit') && field.form) {
    field.form.submit();
  }
});
