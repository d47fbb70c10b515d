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

  // Personal parts: CSRF token, remembered details, who is logged in, text kept on the server
  // while the reader logged in somewhere else.
  var sessionUrl = form.getAttribute("data-session-url");
  var threadId = form.getAttribute("data-thread") || "";
  var logoutUrl = null;

  function refreshSession(then) {
    if (!sessionUrl) return;
    fetch(sessionUrl + "?thread=" + encodeURIComponent(threadId), {
      credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store"
    })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        // A login rotates the token: always take the newest one.
        hidden("csrfmiddlewaretoken", data.csrf_token);
        if (keyField && !keyField.value) keyField.value = data.submission_key;
        // The signed time the form was handed out (too-fast and too-old submissions).
        if (data.form_token) hidden("form_token", data.form_token);
        if (data.guest) {
          fill("author", data.guest.name);
          fill("email", data.guest.email);
          fill("url", data.guest.url);
        }
        if (data.draft) {
          if (textarea && !textarea.value) textarea.value = data.draft.comment || "";
          fill("author", data.draft.author);
          fill("email", data.draft.email);
          fill("url", data.draft.url);
        }
        logoutUrl = data.logout_url;
        showIdentity(data.user);
        showOwn(data.own || []);
        form.setAttribute("data-ready", "1");
        if (then) then(data);
      })
      .catch(function () { /* the server asks the reader to confirm instead */ });
  }

  // Edit / Delete on this reader's own comments, for as long as the site allows. The shared
  // page never carries them; the session endpoint says which comments are this reader's.
  function showOwn(items) {
    Array.prototype.forEach.call(document.querySelectorAll(".comment-own-actions"), function (el) {
      el.parentNode.removeChild(el);
    });
    items.forEach(function (item) {
      var body = document.getElementById("div-comment-" + item.id);
      if (!body) return;
      var until = new Date(item.until);
      var box = document.createElement("div");
      box.className = "comment-own-actions";
      function link(href, text) {
        var a = document.createElement("a");
        a.href = href;
        a.textContent = text;
        a.className = "comment-own-" + text.toLowerCase();
        a.rel = "nofollow";
        return a;
      }
      box.appendChild(link(item.edit_url, "Edit"));
      box.appendChild(document.createTextNode(" · "));
      box.appendChild(link(item.delete_url, "Delete"));
      var note = document.createElement("small");
      note.className = "comment-own-until";
      var time = isNaN(until) ? "" : until.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
      note.textContent = time ? " (you can change it until " + time + ")" : "";
      box.appendChild(note);
      var content = body.querySelector(".comment-content");
      if (content && content.nextSibling) body.insertBefore(box, content.nextSibling);
      else body.appendChild(box);
      var left = until - new Date();
      if (left > 0 && left < 2147483647) {
        setTimeout(function () { if (box.parentNode) box.parentNode.removeChild(box); }, left);
      }
    });
  }

  // "You are commenting using your X account. (Log Out / Change)". Built with textContent
  // only: names come from other services.
  var chooser = document.getElementById("identity-chooser");
  var guestFields = document.getElementById("guest-fields");
  var line = document.getElementById("identity-line");
  var status = document.getElementById("identity-status");
  var siteName = line ? line.querySelector("#identity-provider").textContent : "";

  function setGuestFieldsShown(shown) {
    if (!guestFields) return;
    guestFields.hidden = !shown;
    Array.prototype.forEach.call(guestFields.querySelectorAll("input"), function (input) {
      if (input.id === "url") return;
      if (shown) input.setAttribute("required", ""); else input.removeAttribute("required");
    });
  }

  function showIdentity(user) {
    if (!line) return;
    if (!user) {
      line.hidden = true;
      if (chooser) chooser.hidden = false;
      setGuestFieldsShown(true);
      return;
    }
    var avatar = document.getElementById("identity-avatar");
    var fresh;
    if (user.avatar_url) {
      fresh = document.createElement("img");
      fresh.src = user.avatar_url;
      fresh.alt = "";
      fresh.width = 48;
      fresh.height = 48;
      fresh.referrerPolicy = "no-referrer";
      fresh.className = "avatar";
    } else {
      fresh = document.createElement("span");
      fresh.className = "avatar avatar-initial";
      fresh.setAttribute("aria-hidden", "true");
      fresh.textContent = (user.name || "?").charAt(0).toUpperCase();
    }
    fresh.id = "identity-avatar";
    avatar.parentNode.replaceChild(fresh, avatar);
    line.querySelector("#identity-name").textContent = user.name || "";
    line.querySelector("#identity-provider").textContent = user.provider || siteName;
    line.hidden = false;
    if (chooser) chooser.hidden = true;
    if (status) status.hidden = true;
    setGuestFieldsShown(false);
  }

  if (sessionUrl && !form.querySelector('input[name="csrfmiddlewaretoken"]')) refreshSession();

  // The icons: log in in a popup, keeping the page (and the text) as it is. If the popup is
  // blocked, the same form is sent in this tab and the text comes back afterwards.
  var popup = null;
  var pending = null;
  var giveUp = null;

  function say(text, withCancel) {
    if (!status) return;
    while (status.firstChild) status.removeChild(status.firstChild);
    status.appendChild(document.createTextNode(text));
    if (withCancel) {
      status.appendChild(document.createTextNode(" "));
      var cancelLink = document.createElement("button");
      cancelLink.type = "button";
      cancelLink.className = "link-button";
      cancelLink.id = "identity-cancel";
      cancelLink.textContent = "Cancel";
      cancelLink.addEventListener("click", function () {
        try { if (popup) popup.close(); } catch (e) { /* gone */ }
        finish("cancelled");
      });
      status.appendChild(cancelLink);
    }
    status.hidden = false;
  }

  function finish(outcome) {
    if (!pending) return;
    var name = pending;
    pending = null;
    popup = null;
    if (giveUp) clearTimeout(giveUp);
    if (outcome === "ok") {
      refreshSession(function (data) {
        if (!data.user) say("Could not connect to " + name + ". Try again, or fill in your details.");
      });
    } else if (outcome === "cancelled") {
      say("Logging in to " + name + " was cancelled. Your comment is still here.");
    } else {
      say("Could not connect to " + name + ". Try again, or fill in your details.");
    }
  }

  // Only this site's own pages may report, and only from the popup this page opened.
  window.addEventListener("message", function (event) {
    if (event.origin !== location.origin || !pending) return;
    if (popup && event.source !== popup) return;
    var data = event.data;
    if (!data || data.type !== "broadsheet-identity") return;
    finish(data.status);
  });
  try {
    // When a provider cuts the popup from this page (its own COOP), the popup's last page can
    // still reach this one: same origin by construction.
    var channel = new BroadcastChannel("broadsheet-identity");
    channel.onmessage = function (event) {
      var data = event.data;
      if (pending && data && data.type === "broadsheet-identity") finish(data.status);
    };
  } catch (e) { /* no BroadcastChannel */ }
  function recheck() {
    if (!pending) return;
    refreshSession(function (data) { if (data.user && pending) finish("ok"); });
  }
  window.addEventListener("focus", recheck);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) recheck(); });

  form.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest('button[name="identity_provider"]');
    if (!button) return;
    event.preventDefault();
    var name = button.getAttribute("data-provider-name") || "";
    try { sessionStorage.setItem(draftKey, textarea.value); } catch (e) { /* disabled */ }
    hidden("identity_provider", button.value);
    hidden("js", "1");
    // Opened in the click itself, or the browser blocks it.
    var opened = null;
    try { opened = window.open("", "bs-identity", "popup,width=600,height=720"); } catch (e) { opened = null; }
    var action = form.getAttribute("action");
    form.setAttribute("action", button.getAttribute("formaction"));
    if (opened) {
      popup = opened;
      pending = name;
      hidden("popup", "1");
      form.target = "bs-identity";
      say("Connecting to " + name + "…", true);
      giveUp = setTimeout(function () { finish("error"); }, 10 * 60 * 1000);
    } else {
      hidden("popup", "0");
      form.removeAttribute("target");
    }
    HTMLFormElement.prototype.submit.call(form);
    form.setAttribute("action", action);
    form.removeAttribute("target");
    ["identity_provider", "popup", "js"].forEach(function (n) {
      var input = form.querySelector('input[type="hidden"][name="' + n + '"]');
      if (input) input.parentNode.removeChild(input);
    });
  });

  // Log Out ends that identity; the text stays. Change shows the icons again.
  var logoutButton = document.getElementById("identity-logout-button");
  if (logoutButton) logoutButton.addEventListener("click", function (event) {
    if (!logoutUrl) return;  // the form page: a real POST
    event.preventDefault();
    var token = form.querySelector('input[name="csrfmiddlewaretoken"]');
    fetch(logoutUrl, {
      method: "POST", credentials: "same-origin", redirect: "manual",
      headers: { "X-CSRFToken": token ? token.value : "" }
    }).then(function () {
      if (status) status.hidden = true;
      refreshSession();
    });
  });
  var change = document.getElementById("identity-change");
  if (change) change.addEventListener("click", function (event) {
    event.preventDefault();
    if (chooser) chooser.hidden = !chooser.hidden;
  });

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
