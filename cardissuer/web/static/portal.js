// The holder portal's one script: keeps a draft of a form's text fields in this browser
// (localStorage) so that closing the page loses nothing, and clears it once the application
// is sent. Files are never kept; without this script the forms work the same.
(function () {
  "use strict";
  var PREFIX = "fmcard-portal-draft:";
  var KEPT = { text: 1, email: 1, tel: 1, date: 1, radio: 1, checkbox: 1 };

  function storage() {
    try { return window.localStorage; } catch (e) { return null; }
  }

  function fields(form) {
    return Array.prototype.filter.call(form.elements, function (el) {
      return el.name && el.name !== "csrf" && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" || KEPT[el.type]);
    });
  }

  function save(form, key) {
    var draft = {};
    fields(form).forEach(function (el) {
      if (el.type === "radio" || el.type === "checkbox") {
        if (el.checked) { (draft[el.name] = draft[el.name] || []).push(el.value); }
      } else {
        draft[el.name] = el.value;
      }
    });
    try { storage().setItem(PREFIX + key, JSON.stringify(draft)); } catch (e) { /* full or private mode */ }
  }

  function restore(form, key) {
    var draft;
    try { draft = JSON.parse(storage().getItem(PREFIX + key) || "null"); } catch (e) { draft = null; }
    if (!draft || typeof draft !== "object") { return; }
    // What the server sent back (a refused form) wins over the draft.
    var filled = fields(form).some(function (el) {
      return (el.type === "radio" || el.type === "checkbox") ? el.checked : el.value !== "";
    });
    if (filled) { return; }
    fields(form).forEach(function (el) {
      var value = draft[el.name];
      if (value === undefined) { return; }
      if (el.type === "radio" || el.type === "checkbox") {
        el.checked = Array.isArray(value) && value.indexOf(el.value) >= 0;
      } else if (typeof value === "string") {
        el.value = value;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!storage()) { return; }
    Array.prototype.forEach.call(document.querySelectorAll("[data-clear-draft]"), function (el) {
      storage().removeItem(PREFIX + el.getAttribute("data-clear-draft"));
    });
    Array.prototype.forEach.call(document.querySelectorAll("form[data-draft]"), function (form) {
      var key = form.getAttribute("data-draft");
      restore(form, key);
      form.addEventListener("input", function () { save(form, key); });
      form.addEventListener("change", function () { save(form, key); });
      var note = document.getElementById("draft-note");
      if (note) { note.hidden = false; }
    });
    var summary = document.getElementById("form-errors");
    if (summary) { summary.focus(); }
  });
})();
