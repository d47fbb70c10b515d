/* "Import from WordPress" in the admin. Without this script the pages still work: the upload
   form posts normally (the server refuses an oversized file with 413) and the progress page
   has a Refresh link. With it: the size is checked before uploading, and the progress page
   asks the JSON status URL every second, moves the <progress> bar, and shows the report when
   the import ends. No inline script: the Content-Security-Policy forbids it. */
(function () {
  "use strict";

  function checkSize(form) {
    var max = parseInt(form.getAttribute("data-max-bytes"), 10);
    var input = form.querySelector('input[type="file"]');
    var message = form.querySelector(".wxr-size-error");
    var busy = form.querySelector(".wxr-uploading");
    form.addEventListener("submit", function (event) {
      var file = input && input.files && input.files[0];
      if (file && max && file.size > max) {
        event.preventDefault();
        message.textContent = "This file is " + (file.size / 1048576).toFixed(1) +
          " MB, over the upload limit of " + form.getAttribute("data-max-label") +
          ". Import it from the command line (broadsheet import-wxr FILE).";
        message.hidden = false;
        input.focus();
        return;
      }
      message.hidden = true;
      if (busy) busy.hidden = false;
      var button = form.querySelector('button[type="submit"]');
      if (button) button.disabled = true;
    });
  }

  function poll(section) {
    var url = section.getAttribute("data-status-url");
    var status = section.querySelector(".wxr-status");
    var phase = section.querySelector(".wxr-phase");
    var amount = section.querySelector(".wxr-amount");
    var bar = section.querySelector("progress");
    var failures = 0;

    function show(data) {
      if (status) status.textContent = data.status_label || "";
      phase.textContent = data.phase_label || "";
      amount.textContent = data.amount || "";
      if (data.total) {
        bar.max = data.total;
        bar.value = data.done || 0;
        bar.textContent = (data.percent || 0) + " %";
      } else {
        bar.removeAttribute("value"); // indeterminate
      }
    }

    function tick() {
      fetch(url, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { "Accept": "application/json", "X-Requested-With": "XMLHttpRequest" }
      }).then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      }).then(function (data) {
        failures = 0;
        if (data.finished) {
          window.location.assign(data.url); // the report, rendered by the server
          return;
        }
        show(data);
        window.setTimeout(tick, 1000);
      }).catch(function () {
        failures += 1;
        // The Refresh link still works; keep trying for a while, more slowly.
        if (failures < 30) window.setTimeout(tick, 2000 * Math.min(failures, 5));
      });
    }
    window.setTimeout(tick, 1000);
  }

  document.querySelectorAll("form.wxr-upload[data-max-bytes]").forEach(checkSize);
  document.querySelectorAll(".wxr-progress[data-status-url]").forEach(poll);
})();
