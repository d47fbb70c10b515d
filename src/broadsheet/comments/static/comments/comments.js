// "Leave a Reply": fills in the personal parts of a cached article page and moves the form
// under the comment being answered. Everything works without it (see ?replytocom=).
(function () {
  "use strict";
  var form = document.getElementById("commentform");
  if (!form) return;
  var respond = document.getElementById("respond");
  var textarea = form.querySelector("#comment");
  var parentField = form.querySelector("#comment_parent");
  var keyField = form.querySelector("#submission_key");
  var title = document.getElementById("reply-title");
  var cancel = document.getElementById("cancel-comment-reply-link");
  var draftKey = "broadsheet-draft-" + (form.getAttribute("data-thread") || "");
  var placeholder = null;

  function hidden(name, value) {
    var input = form.querySelector('input[name="' + name + '"]');
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      form.appendChild(input);
    }
    input.value = value;
  }

  function fill(id, value) {
    var input = form.querySelector("#" + id);
    if (input && !input.value && value) input.value = value;
  }

  // Personal parts: CSRF token, remembered details, who is signed in.
  var sessionUrl = form.getAttribute("data-session-url");
  if (sessionUrl && !form.querySelector('input[name="csrfmiddlewaretoken"]')) {
    fetch(sessionUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        hidden("csrfmiddlewaretoken", data.csrf_token);
        if (keyField && !keyField.value) keyField.value = data.submission_key;
        if (data.guest) {
          fill("author", data.guest.name);
          fill("email", data.guest.email);
          fill("url", data.guest.url);
        }
        form.setAttribute("data-ready", "1");
      })
      .catch(function () { /* the server asks the reader to confirm instead */ });
  }

  // Nothing typed is lost: keep a draft in this tab until the comment is on the page. After
  // a successful post the server sends the reader to #comment-N; only then is it dropped.
  try {
    var posted = /^#comment-\d+$/.test(location.hash) && document.getElementById(location.hash.slice(1));
    if (posted) sessionStorage.removeItem(draftKey);
    else if (textarea && !textarea.value) textarea.value = sessionStorage.getItem(draftKey) || "";
    if (textarea) textarea.addEventListener("input", function () {
      sessionStorage.setItem(draftKey, textarea.value);
    });
  } catch (e) { /* storage may be disabled */ }

  function setTitle(name, anchor) {
    while (title.firstChild && title.firstChild !== title.lastChild) title.removeChild(title.firstChild);
    var small = title.lastChild;
    if (name) {
      title.insertBefore(document.createTextNode("Leave a Reply to "), small);
      var link = document.createElement("a");
      link.href = "#" + anchor;
      link.textContent = name;
      title.insertBefore(link, small);
      title.insertBefore(document.createTextNode(" "), small);
    } else {
      title.insertBefore(document.createTextNode("Leave a Reply "), small);
    }
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest(".comment-reply-link");
    if (!link) return;
    var id = link.getAttribute("data-comment-id");
    var body = document.getElementById("div-comment-" + id);
    if (!body) return;
    event.preventDefault();
    if (!placeholder) {
      placeholder = document.createElement("div");
      placeholder.id = "respond-placeholder";
      placeholder.hidden = true;
      respond.parentNode.insertBefore(placeholder, respond);
    }
    body.parentNode.insertBefore(respond, body.nextSibling);
    parentField.value = id;
    setTitle(link.getAttribute("data-author"), "comment-" + id);
    cancel.hidden = false;
    textarea.focus();
  });

  // A form the server placed under a comment (?replytocom=) is cancelled by following the
  // link; the draft above brings the text along.
  var placedByServer = parentField.value !== "0" && parentField.value !== "";

  cancel.addEventListener("click", function (event) {
    if (placedByServer || !placeholder) return;
    event.preventDefault();
    placeholder.parentNode.insertBefore(respond, placeholder);
    parentField.value = "0";
    setTitle(null);
    cancel.hidden = true;
  });
})();
