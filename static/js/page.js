// Small behaviours of every page that would otherwise be inline handlers, which the CSP refuses.
(function () {
  "use strict";
  // <select data-submit-on-change>: choosing an option submits its form (the language switch).
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field.matches && field.matches("[data-submit-on-change]") && field.form) {
      field.form.requestSubmit();
    }
  });
})();
