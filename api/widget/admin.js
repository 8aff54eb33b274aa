/* citekb admin page: upload documents, see how each ingest went, list and delete documents.
   Talks to the same HTTP API as everything else, with a key that has write rights. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var keyInput = $("key"), collectionInput = $("collection"), statusBox = $("status");
  keyInput.value = sessionStorage.getItem("citekb-key") || "";
  collectionInput.value = sessionStorage.getItem("citekb-collection") || "";

  function api(path) {
    var name = collectionInput.value.trim();
    return (name ? "v1/collections/" + encodeURIComponent(name) : "v1") + path;
  }

  function call(method, path, body) {
    var headers = {};
    if (keyInput.value) { headers.Authorization = "Bearer " + keyInput.value; }
    return fetch(api(path), { method: method, headers: headers, body: body }).then(function (r) {
      return r.text().then(function (text) {
        var data = null;
        try { data = JSON.parse(text); } catch (e) { data = null; }
        if (!r.ok) { throw new Error((data && data.error) || ("the server answered " + r.status)); }
        return data;
      });
    });
  }

  function cell(text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    return td;
  }

  function say(text, cls) { statusBox.textContent = text; statusBox.className = cls || ""; }

  function load() {
    sessionStorage.setItem("citekb-key", keyInput.value);
    sessionStorage.setItem("citekb-collection", collectionInput.value.trim());
    return call("GET", "/documents").then(function (data) {
      var body = $("documents").tBodies[0];
      body.textContent = "";
      data.documents.forEach(function (d) {
        var row = document.createElement("tr");
        row.setAttribute("data-doc-id", d.doc_id);
        row.appendChild(cell(d.source));
        row.appendChild(cell(d.title));
        row.appendChild(cell(d.pages === null ? "" : String(d.pages)));
        row.appendChild(cell(String(d.chunks)));
        row.appendChild(cell(new Date(d.ingested_at * 1000).toLocaleString()));
        row.appendChild(cell((d.groups || []).join(", ")));
        row.appendChild(cell(d.warnings.join("; "), d.warnings.length ? "warn" : ""));
        var remove = document.createElement("button");
        remove.className = "danger";
        remove.type = "button";
        remove.textContent = "Delete";
        remove.addEventListener("click", function () {
          if (!window.confirm("Delete " + d.source + " from the index?")) { return; }
          remove.disabled = true;
          call("DELETE", "/documents/" + encodeURIComponent(d.doc_id)).then(function () {
            say("Deleted " + d.source + ".", "ok");
            return load();
          }).catch(function (err) { remove.disabled = false; say(err.message, "fail"); });
        });
        var actions = document.createElement("td");
        actions.appendChild(remove);
        row.appendChild(actions);
        body.appendChild(row);
      });
      if (!data.documents.length) {
        var empty = document.createElement("tr");
        empty.appendChild(cell("No documents yet.", "muted"));
        body.appendChild(empty);
      }
    }).catch(function (err) { say(err.message, "fail"); });
  }

  function report(data) {
    var table = $("report"), body = table.tBodies[0];
    body.textContent = "";
    function add(path, result, details, cls) {
      var row = document.createElement("tr");
      row.appendChild(cell(path.split(/[\\/]/).pop()));
      row.appendChild(cell(result, cls));
      row.appendChild(cell(details));
      body.appendChild(row);
    }
    data.ingested.forEach(function (f) {
      add(f.path, f.unchanged ? "unchanged" : "ingested",
          (f.pages === null ? "" : f.pages + " pages, ") + f.chunks + (f.chunks === 1 ? " chunk" : " chunks") + (f.warnings.length ? "; " + f.warnings.join("; ") : ""),
          f.warnings.length ? "warn" : "ok");
    });
    data.skipped.forEach(function (s) { add(s.path, "skipped", s.reason, "warn"); });
    data.failed.forEach(function (f) { add(f.path, "failed", f.error, "fail"); });
    table.hidden = false;
    var failed = data.failed.length;
    say(data.ingested.length + " ingested, " + data.skipped.length + " skipped, " + failed + " failed.", failed ? "fail" : "ok");
  }

  $("connect").addEventListener("click", function () { say(""); load(); });
  $("upload").addEventListener("submit", function (event) {
    event.preventDefault();
    var files = $("files").files;
    if (!files.length) { say("Choose one or more files first.", "warn"); return; }
    var form = new FormData();
    Array.prototype.forEach.call(files, function (f) { form.append("files", f, f.name); });
    // "hr, finance" -> two groups fields; none: the documents are readable by every key of the collection.
    $("groups").value.split(/[\s,]+/).filter(Boolean).forEach(function (g) { form.append("groups", g); });
    $("upload-button").disabled = true;
    say("Ingesting " + files.length + " file(s)\u2026");
    call("POST", "/documents", form).then(function (data) {
      report(data);
      $("files").value = "";
      return load();
    }).catch(function (err) { say(err.message, "fail"); })
      .then(function () { $("upload-button").disabled = false; });
  });
  load();  // with the key this tab last used; an open server needs none
})();
