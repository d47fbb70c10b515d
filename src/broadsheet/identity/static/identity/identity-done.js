// The last page of a sign-in. In the popup: tell the comment form how it went and close.
// Only this site's exact origin may hear it, and only a status is said (no names, no tokens):
// the form asks the server who the reader is now.
(function () {
  "use strict";
  var node = document.getElementById("identity-data");
  var data = {};
  try { data = JSON.parse(node ? node.textContent : "{}") || {}; } catch (e) { data = {}; }
  var status = data.status === "ok" || data.status === "cancelled" ? data.status : "error";
  var message = { type: "broadsheet-identity", status: status };
  try {
    if (window.opener && window.opener !== window) window.opener.postMessage(message, location.origin);
  } catch (e) { /* opener gone or on another origin */ }
  try {
    var channel = new BroadcastChannel("broadsheet-identity");
    channel.postMessage(message);
    channel.close();
  } catch (e) { /* no BroadcastChannel */ }
  if (window.opener || window.name === "bs-identity") {
    setTimeout(function () { window.close(); }, 50);
  }
})();
