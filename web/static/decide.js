// Progressive: without this script the form still works, and the server records one decision
// per link whatever arrives. With it, a second click (or a double tap on a phone) sends nothing.
"use strict";
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-decide")) return;
  if (form.dataset.sent) {
    event.preventDefault();
    return;
  }
  form.dataset.sent = "1";
  // A disabled button is left out of what the form sends: carry the clicked one's value.
  var submitter = event.submitter;
  if (submitter && submitter.name) {
    var carried = document.createElement("input");
    carried.type = "hidden";
    carried.name = submitter.name;
    carried.value = submitter.value;
    form.appendChild(carried);
  }
  form.querySelectorAll("button[type=submit]").forEach(function (button) {
    button.disabled = true;
    button.setAttribute("aria-disabled", "true");
  });
  if (submitter && form.dataset.sending) submitter.textContent = form.dataset.sending;
});
