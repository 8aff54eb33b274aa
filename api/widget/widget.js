/* citekb widget: one script tag adds an ask box to any page.

     <script src="https://kb.example.com/widget/widget.js" data-key="ck_..." data-collection="handbook"></script>

   data-key         an API key with read rights on the collection (sent as a Bearer token)
   data-collection  the collection to ask (optional: the server's default knowledge base)
   data-target      a CSS selector of the element to put the box in (optional: where the tag is)
   data-title       the box's heading (optional)

   The answer streams in as it is written; each [n] in it is a link that opens a viewer at the
   cited page, the quoted sentence highlighted. Plain JavaScript, no build step, no dependencies;
   everything lives in a shadow root, so the portal's styles and the widget's never mix. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) { return; }
  var KEY = script.getAttribute("data-key") || "";
  var COLLECTION = script.getAttribute("data-collection") || "";
  var TITLE = script.getAttribute("data-title") || "Ask the documents";
  var BASE = new URL(script.src, document.baseURI).href.replace(/\/widget\/widget\.js(\?.*)?$/, "");

  var CSS = [
    ":host{all:initial;display:block;font:14px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1d2330}",
    ".box{border:1px solid #d5d9e0;border-radius:8px;padding:12px;background:#fff;max-width:720px}",
    ".box h2{font-size:15px;margin:0 0 8px}",
    "form{display:flex;gap:6px}",
    "input{flex:1;font:inherit;padding:6px 8px;border:1px solid #b9c0cc;border-radius:6px}",
    "button{font:inherit;padding:6px 12px;border:1px solid #2b59c3;border-radius:6px;background:#2b59c3;color:#fff;cursor:pointer}",
    "button[disabled]{opacity:.6;cursor:default}",
    ".answer{margin-top:10px;white-space:pre-wrap}",
    ".answer a.cite{color:#2b59c3;font-weight:600;text-decoration:none;cursor:pointer}",
    ".sources{margin:8px 0 0;padding:0;list-style:none;font-size:12px;color:#4a5263}",
    ".sources a{color:#2b59c3;cursor:pointer}",
    ".error{color:#b00020;margin-top:8px}",
    ".overlay{position:fixed;inset:0;background:rgba(15,20,30,.55);display:flex;align-items:center;justify-content:center;z-index:2147483647}",
    ".viewer{background:#fff;border-radius:8px;width:min(920px,94vw);height:90vh;display:flex;flex-direction:column}",
    ".bar{display:flex;align-items:center;gap:8px;padding:8px 12px;border-bottom:1px solid #e1e4ea}",
    ".bar .where{flex:1;font-size:13px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}",
    ".bar button{padding:3px 9px}",
    ".bar button.plain{background:#fff;color:#2b59c3}",
    ".body{flex:1;overflow:auto;padding:12px;background:#eef0f4}",
    ".page{position:relative;margin:0 auto;background:#fff;box-shadow:0 1px 4px rgba(0,0,0,.2);max-width:100%}",
    ".page img{display:block;width:100%}",
    ".hl{position:absolute;background:rgba(255,214,0,.42);outline:2px solid rgba(230,160,0,.9);border-radius:2px;pointer-events:none}",
    ".doc{background:#fff;max-width:760px;margin:0 auto;padding:16px 20px;box-shadow:0 1px 4px rgba(0,0,0,.2)}",
    ".doc p{margin:0 0 8px;white-space:pre-wrap}",
    ".doc .heading{font-weight:700;margin-top:12px}",
    ".doc .pagebreak{color:#8a91a0;font-size:11px;border-top:1px dashed #c9ced8;margin:12px 0 6px;padding-top:2px}",
    ".in-section{background:#fff8d6}",
    ".cited{background:#ffe680;outline:2px solid #e6a000}",
    "mark{background:#ffc400;color:inherit}",
    ".lines{font:12px/1.55 ui-monospace,SFMono-Regular,Menlo,monospace;white-space:pre-wrap}",
    ".lines div{display:flex}",
    ".lines .n{width:3.5em;flex:none;color:#8a91a0;text-align:right;padding-right:10px;user-select:none}"
  ].join("\n");

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }

  function api(path) {
    var scope = COLLECTION ? "/v1/collections/" + encodeURIComponent(COLLECTION) : "/v1";
    return BASE + scope + path;
  }

  function headers(extra) {
    var h = extra || {};
    if (KEY) { h.Authorization = "Bearer " + KEY; }
    return h;
  }

  // An error response as a sentence: the server's {"error": ...}, and when to retry after a 429.
  function failure(response) {
    return response.text().then(function (body) {
      var message = "";
      try { message = JSON.parse(body).error || ""; } catch (e) { message = ""; }
      if (!message) { message = "the server answered " + response.status; }
      if (response.status === 429 && response.headers.get("Retry-After")) {
        message += " (try again in " + response.headers.get("Retry-After") + " s)";
      }
      return new Error(message);
    });
  }

  // ---------------------------------------------------------------- the ask box

  var host = el("div", { "class": "citekb-widget" });
  var target = script.getAttribute("data-target") ? document.querySelector(script.getAttribute("data-target")) : null;
  if (target) { target.appendChild(host); } else { script.parentNode.insertBefore(host, script); }
  var root = host.attachShadow({ mode: "open" });
  root.appendChild(el("style", { text: CSS }));
  var input = el("input", { type: "text", name: "q", placeholder: "Ask a question", "aria-label": "Question", maxlength: "4000" });
  var askButton = el("button", { type: "submit", text: "Ask" });
  var form = el("form", { role: "search" }, [input, askButton]);
  var answerBox = el("div", { "class": "answer", "aria-live": "polite" });
  var sourcesBox = el("ol", { "class": "sources" });
  var errorBox = el("div", { "class": "error", role: "alert" });
  root.appendChild(el("div", { "class": "box" }, [el("h2", { text: TITLE }), form, answerBox, sourcesBox, errorBox]));

  var citations = {};

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var question = input.value.trim();
    if (!question) { return; }
    askButton.disabled = true;
    answerBox.textContent = "";
    sourcesBox.textContent = "";
    errorBox.textContent = "";
    citations = {};
    var text = "";
    ask(question, function (delta) {
      text += delta;
      renderAnswer(text, false);
    }).then(function (found) {
      (found || []).forEach(function (c) { citations[c.n] = c; });
      renderAnswer(text, true);
      renderSources(found || []);
    }).catch(function (err) {
      errorBox.textContent = err.message;
    }).then(function () { askButton.disabled = false; });
  });

  // Streams the answer from the chat completions endpoint (server-sent events); onDelta gets
  // each piece of text as it comes, and the promise the citations, sent at the end.
  function ask(question, onDelta) {
    return fetch(api("/chat/completions"), {
      method: "POST",
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify({ model: "citekb", stream: true, messages: [{ role: "user", content: question }] })
    }).then(function (response) {
      if (!response.ok) { return failure(response).then(function (e) { throw e; }); }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      var found = [];
      function handle(event) {
        var data = event.split("\n").filter(function (l) { return l.indexOf("data:") === 0; })
          .map(function (l) { return l.slice(5).replace(/^ /, ""); }).join("\n");
        if (!data || data === "[DONE]") { return; }
        var chunk = JSON.parse(data);
        if (chunk.error) { throw new Error(chunk.error.message || chunk.error); }
        var choice = (chunk.choices || [])[0] || {};
        if (choice.delta && choice.delta.content) { onDelta(choice.delta.content); }
        if (chunk.citations) { found = chunk.citations; }
      }
      function pump() {
        return reader.read().then(function (step) {
          buffer += decoder.decode(step.value || new Uint8Array(), { stream: !step.done });
          var events = buffer.split(/\r?\n\r?\n/);
          buffer = step.done ? "" : events.pop();
          events.forEach(handle);
          return step.done ? found : pump();
        });
      }
      return pump();
    });
  }

  function renderAnswer(text, done) {
    answerBox.textContent = "";
    var last = 0;
    text.replace(/\[(\d+)\]/g, function (marker, n, at) {
      answerBox.appendChild(document.createTextNode(text.slice(last, at)));
      if (done && citations[n]) {
        var link = el("a", { "class": "cite", href: "#", "data-n": n, title: where(citations[n]), text: marker });
        link.addEventListener("click", function (e) { e.preventDefault(); openViewer(citations[n]); });
        answerBox.appendChild(link);
      } else {
        answerBox.appendChild(document.createTextNode(marker));
      }
      last = at + marker.length;
      return marker;
    });
    answerBox.appendChild(document.createTextNode(text.slice(last)));
  }

  function where(c) {
    var at = c.source;
    if (c.page) { at += " p." + c.page + (c.page_end && c.page_end !== c.page ? "-" + c.page_end : ""); }
    if (c.line_start) { at += c.line_end > c.line_start ? " lines " + c.line_start + "-" + c.line_end : " line " + c.line_start; }
    if (c.section) { at += " \u00a7 " + c.section; }
    return at;
  }

  function renderSources(found) {
    found.forEach(function (c) {
      var link = el("a", { href: "#", "data-n": String(c.n), text: "[" + c.n + "] " + where(c) });
      link.addEventListener("click", function (e) { e.preventDefault(); openViewer(c); });
      sourcesBox.appendChild(el("li", {}, [link]));
    });
  }

  // ---------------------------------------------------------------- the viewer

  var overlay = null;
  var blobUrls = [];

  function closeViewer() {
    if (overlay) { overlay.remove(); overlay = null; }
    blobUrls.forEach(function (u) { URL.revokeObjectURL(u); });
    blobUrls = [];
  }

  document.addEventListener("keydown", function (e) { if (e.key === "Escape") { closeViewer(); } });

  function fetchJson(path) {
    return fetch(api(path), { headers: headers() }).then(function (r) {
      return r.ok ? r.json() : failure(r).then(function (e) { throw e; });
    });
  }

  // Images and files need the key too, so they are fetched and shown from blob: URLs.
  function fetchBlobUrl(path) {
    return fetch(api(path), { headers: headers() }).then(function (r) {
      return r.ok ? r.blob() : failure(r).then(function (e) { throw e; });
    }).then(function (blob) {
      var url = URL.createObjectURL(blob);
      blobUrls.push(url);
      return url;
    });
  }

  function openViewer(citation) {
    closeViewer();
    var doc = "/documents/" + encodeURIComponent(citation.doc_id);
    var whereBox = el("div", { "class": "where", text: where(citation) });
    var pageLabel = el("span", { "class": "pageno" });
    var prev = el("button", { type: "button", "class": "plain prev", "aria-label": "Previous page", text: "\u2039" });
    var next = el("button", { type: "button", "class": "plain next", "aria-label": "Next page", text: "\u203a" });
    var original = el("button", { type: "button", "class": "plain original", text: "Original" });
    var close = el("button", { type: "button", "class": "close", "aria-label": "Close", text: "\u00d7" });
    var body = el("div", { "class": "body" });
    var viewer = el("div", { "class": "viewer", role: "dialog", "aria-modal": "true", "aria-label": "Source: " + citation.source },
      [el("div", { "class": "bar" }, [whereBox, prev, pageLabel, next, original, close]), body]);
    overlay = el("div", { "class": "overlay" }, [viewer]);
    overlay.addEventListener("click", function (e) { if (e.target === overlay) { closeViewer(); } });
    close.addEventListener("click", closeViewer);
    original.addEventListener("click", function () {
      fetchBlobUrl(doc).then(function (url) { window.open(url, "_blank", "noopener"); })
        .catch(function (err) { body.prepend(el("div", { "class": "error", text: err.message })); });
    });
    root.appendChild(overlay);
    fetchJson(doc + "/view?chunk_id=" + encodeURIComponent(citation.chunk_id) + "&quote=" + encodeURIComponent(citation.text || ""))
      .then(function (view) {
        if (view.format === "pdf") { showPdf(view, body, doc, prev, next, pageLabel); }
        else {
          prev.remove(); next.remove(); pageLabel.remove();
          if (view.format === "docx") { showBlocks(view, body); } else { showLines(view, body); }
        }
      })
      .catch(function (err) { body.appendChild(el("div", { "class": "error", text: err.message })); });
  }

  function showPdf(view, body, doc, prev, next, pageLabel) {
    var shown = view.page || 1;
    function show(number) {
      shown = number;
      pageLabel.textContent = "p. " + number + " / " + view.pages;
      prev.disabled = number <= 1;
      next.disabled = number >= view.pages;
      var page = el("div", { "class": "page", "data-page": String(number) });
      body.textContent = "";
      body.appendChild(page);
      return fetchBlobUrl(doc + "/pages/" + number + ".png").then(function (url) {
        if (shown !== number) { return; }
        var img = el("img", { alt: view.source + " page " + number, src: url });
        page.appendChild(img);
        var size = view.page_sizes.filter(function (s) { return s.page === number; })[0];
        var first = null;
        view.boxes.filter(function (b) { return b.page === number && size; }).forEach(function (b) {
          // Percentages of the page, so the boxes stay on the text at any zoom.
          var box = el("div", { "class": "hl" });
          box.style.left = (100 * b.x0 / size.width) + "%";
          box.style.top = (100 * b.top / size.height) + "%";
          box.style.width = (100 * (b.x1 - b.x0) / size.width) + "%";
          box.style.height = (100 * (b.bottom - b.top) / size.height) + "%";
          page.appendChild(box);
          first = first || box;
        });
        img.addEventListener("load", function () { if (first) { first.scrollIntoView({ block: "center" }); } });
      }).catch(function (err) { body.appendChild(el("div", { "class": "error", text: err.message })); });
    }
    prev.addEventListener("click", function () { if (shown > 1) { show(shown - 1); } });
    next.addEventListener("click", function () { if (shown < view.pages) { show(shown + 1); } });
    show(shown);
  }

  function showBlocks(view, body) {
    var docBox = el("div", { "class": "doc" });
    var page = null;
    var first = null;
    view.blocks.forEach(function (b) {
      if (b.page !== page) {
        page = b.page;
        if (page) { docBox.appendChild(el("div", { "class": "pagebreak", "data-page": String(page), text: "Page " + page })); }
      }
      var p = el("p", { "class": [b.kind, b.in_section ? "in-section" : "", b.cited ? "cited" : ""].join(" ").trim() });
      if (b.mark) {
        p.appendChild(document.createTextNode(b.text.slice(0, b.mark[0])));
        p.appendChild(el("mark", { text: b.text.slice(b.mark[0], b.mark[1]) }));
        p.appendChild(document.createTextNode(b.text.slice(b.mark[1])));
      } else {
        p.textContent = b.text;
      }
      docBox.appendChild(p);
      if (b.cited && !first) { first = p; }
    });
    body.appendChild(docBox);
    if (first) { first.scrollIntoView({ block: "center" }); }
  }

  function showLines(view, body) {
    var linesBox = el("div", { "class": "doc lines" });
    var first = null;
    view.lines.forEach(function (line) {
      var row = el("div", { "class": [line.in_section ? "in-section" : "", line.cited ? "cited" : ""].join(" ").trim(),
                            "data-line": String(line.n) },
        [el("span", { "class": "n", text: String(line.n) }), el("span", { text: line.text || " " })]);
      linesBox.appendChild(row);
      if (line.cited && !first) { first = row; }
    });
    body.appendChild(linesBox);
    if (first) { first.scrollIntoView({ block: "center" }); }
  }
})();
