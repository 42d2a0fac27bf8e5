"use strict";
// The rows of a dotevals report: filters, sorting, pages and a detail view.
// Every stored value is shown with textContent: nothing from a dataset or a model is markup.
(function () {
  var PAGE = 100;
  var CLIP = 300;
  var started = performance.now();
  var data = JSON.parse(document.getElementById("dotevals-data").textContent);

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clip(value) {
    return value.length > CLIP ? value.slice(0, CLIP) + "\u2026" : value;
  }

  function haystack(row) {
    if (row.h === undefined) {
      var parts = [row.p, row.d];
      row.c.forEach(function (cell) {
        if (!cell) return;
        parts.push(cell.r, cell.e || "");
        cell.s.forEach(function (score) { parts.push(score[1]); });
      });
      row.h = parts.join("\n").toLowerCase();
    }
    return row.h;
  }

  function wrong(cell) {
    return !!cell && (cell.k === 0 || cell.k === -1);
  }

  function verdictClass(cell) {
    if (!cell) return "missing";
    return { "1": "right", "0": "wrong", "-1": "error" }[String(cell.k)] || "none";
  }

  // wrong and errored first, then no verdict, then right, then no record
  function verdictRank(cell) {
    if (!cell) return 4;
    return { "-1": 0, "0": 1, "null": 2, "1": 3 }[String(cell.k)];
  }

  function comparator(key) {
    if (key === "i") return function (a, b) { return a.i - b.i; };
    if (key === "p") {
      return function (a, b) { return a.p < b.p ? -1 : a.p > b.p ? 1 : a.i - b.i; };
    }
    var model = Number(key.slice(1));
    return function (a, b) {
      return verdictRank(a.c[model]) - verdictRank(b.c[model]) || a.i - b.i;
    };
  }

  function Grid(section, evaluation) {
    this.section = section;
    this.models = evaluation.models;
    this.rows = evaluation.rows;
    this.shown = this.rows;
    this.page = 0;
    this.sort = { key: "i", descending: false };
    this.body = section.querySelector("tbody");
    this.detail = section.querySelector(".detail");
    this.bind();
    this.refresh();
  }

  Grid.prototype.control = function (cls) {
    return this.section.querySelector("." + cls);
  };

  Grid.prototype.bind = function () {
    var self = this;
    ["f-errors", "f-disagree", "f-wrong", "f-search"].forEach(function (cls) {
      var input = self.control(cls);
      if (input) input.addEventListener("input", function () { self.page = 0; self.refresh(); });
      if (input) input.addEventListener("change", function () { self.page = 0; self.refresh(); });
    });
    this.control("prev").addEventListener("click", function () { self.turn(-1); });
    this.control("next").addEventListener("click", function () { self.turn(1); });
    this.section.querySelectorAll("th[data-sort]").forEach(function (th) {
      th.addEventListener("click", function () { self.sortBy(th.getAttribute("data-sort")); });
    });
    this.body.addEventListener("click", function (event) {
      var tr = event.target.closest("tr");
      if (tr) self.open(self.shown[Number(tr.getAttribute("data-index"))]);
    });
    this.body.addEventListener("keydown", function (event) {
      var tr = event.target.closest("tr");
      if (tr && event.key === "Enter") self.open(self.shown[Number(tr.getAttribute("data-index"))]);
    });
  };

  Grid.prototype.filter = function () {
    var errors = this.control("f-errors").checked;
    var disagree = this.control("f-disagree");
    var onlyDisagree = !!disagree && disagree.checked;
    var wrongFor = this.control("f-wrong").value;
    var model = wrongFor === "" ? -1 : Number(wrongFor);
    var query = this.control("f-search").value.trim().toLowerCase();
    return this.rows.filter(function (row) {
      if (errors && !row.c.some(function (c) { return !!c && !!c.e; })) return false;
      if (onlyDisagree && !row.x) return false;
      if (model >= 0 && !wrong(row.c[model])) return false;
      return !query || haystack(row).indexOf(query) >= 0;
    });
  };

  Grid.prototype.refresh = function () {
    var shown = this.filter();
    shown.sort(comparator(this.sort.key));
    if (this.sort.descending) shown.reverse();
    this.shown = shown;
    this.draw();
  };

  Grid.prototype.sortBy = function (key) {
    this.sort = { key: key, descending: this.sort.key === key && !this.sort.descending };
    var sort = this.sort;
    this.section.querySelectorAll("th[data-sort]").forEach(function (th) {
      var active = th.getAttribute("data-sort") === sort.key;
      th.setAttribute("aria-sort", active ? (sort.descending ? "descending" : "ascending") : "none");
    });
    this.page = 0;
    this.refresh();
  };

  Grid.prototype.pages = function () {
    return Math.max(1, Math.ceil(this.shown.length / PAGE));
  };

  Grid.prototype.turn = function (step) {
    this.page = Math.min(this.pages() - 1, Math.max(0, this.page + step));
    this.draw();
  };

  Grid.prototype.cell = function (cell) {
    var td = el("td", "answer " + verdictClass(cell));
    if (!cell) {
      td.appendChild(el("div", "missing", "no record"));
      return td;
    }
    td.appendChild(el("div", "response", clip(cell.r)));
    var scores = cell.s.map(function (s) { return s[0] + " = " + s[1]; }).join(", ");
    if (scores) td.appendChild(el("div", "scores", scores));
    if (cell.e) td.appendChild(el("div", "error", clip(cell.e)));
    return td;
  };

  Grid.prototype.draw = function () {
    var start = this.page * PAGE;
    var fragment = document.createDocumentFragment();
    for (var i = start; i < Math.min(start + PAGE, this.shown.length); i++) {
      var row = this.shown[i];
      var tr = el("tr");
      tr.setAttribute("data-index", String(i));
      tr.setAttribute("data-item", String(row.i));
      tr.tabIndex = 0;
      tr.appendChild(el("td", "item", row.i));
      tr.appendChild(el("td", "prompt", clip(row.p)));
      row.c.forEach(function (cell) { tr.appendChild(this.cell(cell)); }, this);
      fragment.appendChild(tr);
    }
    this.body.replaceChildren(fragment);
    this.control("count").textContent = this.shown.length + " of " + this.rows.length + " rows";
    this.control("page").textContent = "page " + (this.page + 1) + " of " + this.pages();
  };

  function field(parent, label, value) {
    if (value === null || value === undefined || value === "") return;
    parent.appendChild(el("dt", null, label));
    var dd = el("dd");
    dd.appendChild(el("pre", null, value));
    parent.appendChild(dd);
  }

  Grid.prototype.open = function (row) {
    var detail = this.detail;
    detail.replaceChildren();
    var close = el("button", "close", "close");
    close.type = "button";
    close.addEventListener("click", function () { detail.hidden = true; });
    detail.appendChild(close);
    detail.appendChild(el("h4", null, "Item " + row.i));
    var facts = el("dl");
    field(facts, "prompt", row.p);
    field(facts, "dataset row", row.d);
    detail.appendChild(facts);
    var models = el("div", "models");
    detail.appendChild(models);
    row.c.forEach(function (cell, index) {
      var part = el("div", "model " + verdictClass(cell));
      part.appendChild(el("h5", null, this.models[index]));
      var list = el("dl");
      if (!cell) {
        field(list, "record", "none stored for this item");
      } else {
        field(list, "response", cell.r);
        field(list, "scores", cell.s.map(function (s) { return s[0] + " = " + s[1]; }).join("\n"));
        field(list, "metadata", cell.md);
        field(list, "error", cell.e);
        field(list, "traceback", cell.tb);
        field(list, "tokens", cell.u);
        field(list, "cost", cell.$ === undefined ? null : String(cell.$));
        field(list, "time", cell.t === undefined ? null : cell.t.toFixed(3) + " s");
        field(list, "attempts", String(cell.a));
      }
      part.appendChild(list);
      models.appendChild(part);
    }, this);
    detail.hidden = false;
    detail.scrollIntoView({ block: "nearest" });
  };

  document.querySelectorAll("section.rows").forEach(function (section) {
    new Grid(section, data.evaluations[Number(section.getAttribute("data-eval"))]);
  });
  document.body.setAttribute("data-render-ms", String(performance.now() - started));
  document.body.setAttribute("data-ready", "1");
})();
