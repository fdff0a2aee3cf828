// The county office's page: filters, a map of open cases by deadline, the table, a case's
// history and the departments' performance. Read-only; every request carries the visitor's
// credentials (an admin's signed link, or Telegram's initData in the Mini App), which the
// server checks each time. Words come from the server in the page's language.
"use strict";

(function () {
  const texts = JSON.parse(document.getElementById("texts").textContent);
  const t = (key, params) =>
    (texts[key] || key).replace(/\{(\w+)\}/g, (_, name) => (params && name in params ? params[name] : ""));
  const COLOURS = { green: "#2e7d32", yellow: "#f2a900", red: "#c62828", none: "#78909c" };
  const FILTERS = ["town", "department", "category", "state"];
  const status = document.getElementById("status");
  let map = null;
  let points = null;

  function credentials() {
    // An admin's link: kept for this tab only and taken out of the address bar, so it is
    // not left in the history or shown over a shoulder. The Mini App: Telegram's launch data.
    const query = new URLSearchParams(location.search);
    const link = query.get("t");
    if (link) {
      sessionStorage.setItem("dashboard-link", link);
      query.delete("t");
      const rest = query.toString();
      history.replaceState(null, "", location.pathname + (rest ? "?" + rest : ""));
    }
    const launch = new URLSearchParams(location.hash.slice(1)).get("tgWebAppData");
    if (launch) {
      sessionStorage.setItem("dashboard-tma", launch);
    }
    const initData = launch || sessionStorage.getItem("dashboard-tma");
    if (initData) {
      return "tma " + initData;
    }
    const kept = sessionStorage.getItem("dashboard-link");
    return kept ? "Link " + kept : "";
  }

  const authorization = credentials();
  const language = document.documentElement.lang;

  async function get(path) {
    const answer = await fetch(path + (path.includes("?") ? "&" : "?") + "lang=" + language, {
      headers: authorization ? { Authorization: authorization } : {},
      cache: "no-store",
    });
    const body = await answer.json().catch(() => ({}));
    if (!answer.ok) {
      throw new Error(body.message || t("denied.failed"));
    }
    return body;
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function lightDot(light) {
    const dot = element("span", null, "light " + (light || "none"));
    dot.title = t("light." + (light || "none"));
    return dot;
  }

  function headRow(table, labels) {
    const row = element("tr");
    labels.forEach((label) => row.appendChild(element("th", label)));
    table.tHead.replaceChildren(row);
  }

  function fillFilters(choices) {
    FILTERS.forEach((name) => {
      const select = document.querySelector(`select[name="${name}"]`);
      const any = element("option", t("any"));
      any.value = "";
      select.replaceChildren(any);
      choices[name].forEach((choice) => {
        const option = element("option", choice.label);
        option.value = choice.value;
        select.appendChild(option);
      });
      select.addEventListener("change", loadCases);
    });
  }

  function drawMap(base) {
    map = L.map("map", { zoomSnap: 0.25, attributionControl: base.tiles !== "none" });
    if (base.tiles === "osm") {
      L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
        maxZoom: 19, attribution: "© OpenStreetMap contributors",
      }).addTo(map);
    } else if (base.tiles === "amap") {
      L.tileLayer("https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}", {
        subdomains: "1234", maxZoom: 18, attribution: "© 高德地图",
      }).addTo(map);
    } else if (base.tiles === "tianditu") {
      ["vec", "cva"].forEach((layer) =>
        L.tileLayer(`https://t{s}.tianditu.gov.cn/${layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=${layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=${encodeURIComponent(base.key)}`, {
          subdomains: "01234567", maxZoom: 18, attribution: "© 天地图",
        }).addTo(map));
    }
    const outlines = L.featureGroup();
    base.outlines.forEach((town) => {
      const shape = L.polygon(town.rings, { color: "#14324f", weight: 1.5, fillColor: "#dfe8f1", fillOpacity: base.tiles === "none" ? 0.6 : 0.08, className: "town-outline" });
      if (town.name) {
        shape.bindTooltip(town.name, { permanent: true, direction: "center", className: "town-name" });
      }
      outlines.addLayer(shape);
    });
    outlines.addTo(map);
    if (outlines.getLayers().length) {
      map.fitBounds(outlines.getBounds(), { padding: [10, 10] });
    } else {
      map.setView([35, 105], 4);
    }
    points = L.featureGroup().addTo(map);
    const legend = L.control({ position: "bottomright" });
    legend.onAdd = () => {
      const box = element("div", null, "legend");
      ["green", "yellow", "red"].forEach((light) => {
        const line = element("div");
        line.append(lightDot(light), t("light." + light));
        box.appendChild(line);
      });
      return box;
    };
    legend.addTo(map);
  }

  function drawPoints(found) {
    points.clearLayers();
    found.forEach(([lat, lon, light, reference]) => {
      const point = L.circleMarker([lat, lon], {
        radius: 7, color: "#fff", weight: 1.5, fillColor: COLOURS[light] || COLOURS.none, fillOpacity: 0.95,
        className: `case-point light-${light}`,
      });
      point.bindTooltip(`${reference} · ${t("light." + light)}`);
      point.on("click", () => showHistory(reference));
      points.addLayer(point);
    });
  }

  function drawCases(found) {
    const table = document.getElementById("cases");
    headRow(table, ["reference", "light", "category", "town", "department", "state", "opened", "due", "fixed"].map((c) => t("column." + c)));
    const rows = found.cases.map((item) => {
      const row = element("tr");
      row.dataset.reference = item.reference;
      const reference = element("td", item.reference);
      if (item.urgent) reference.appendChild(element("span", t("urgent"), "urgent"));
      const light = element("td");
      light.append(lightDot(item.light), t("light." + (item.light || "none")));
      row.append(reference, light);
      [item.category, item.town, item.department, item.state_label, item.opened, item.due, item.fixed || "-"].forEach((value) =>
        row.appendChild(element("td", value)));
      row.addEventListener("click", () => showHistory(item.reference));
      return row;
    });
    table.tBodies[0].replaceChildren(...rows);
    if (!rows.length) {
      const row = element("tr");
      const cell = element("td", t("none"));
      cell.colSpan = 9;
      row.appendChild(cell);
      table.tBodies[0].appendChild(row);
    }
    document.getElementById("count").textContent = t("count", { total: found.total, shown: found.shown });
  }

  async function showHistory(reference) {
    document.querySelectorAll("#cases tbody tr").forEach((row) =>
      row.classList.toggle("selected", row.dataset.reference === reference));
    try {
      const found = await get("dashboard/api/cases/" + encodeURIComponent(reference));
      document.getElementById("history-title").textContent = t("history", { reference });
      document.getElementById("history-hint").hidden = true;
      const table = document.getElementById("events");
      headRow(table, ["at", "who", "action", "after", "department", "note"].map((c) => t("column." + c)));
      table.tBodies[0].replaceChildren(...found.events.map((event) => {
        const row = element("tr");
        [event.at, event.who, event.action, event.state, event.department, event.note || ""].forEach((value) =>
          row.appendChild(element("td", value)));
        return row;
      }));
      table.hidden = false;
    } catch (error) {
      status.textContent = error.message;
    }
  }

  function drawPerformance(performance) {
    document.getElementById("performance-title").textContent = t("performance", { year: performance.period });
    const table = document.getElementById("performance");
    headRow(table, performance.headers);
    table.tBodies[0].replaceChildren(...performance.rows.map((cells) => {
      const row = element("tr");
      cells.forEach((value) => row.appendChild(element("td", value === null ? "-" : String(value))));
      return row;
    }));
  }

  async function loadCases() {
    const query = new URLSearchParams();
    FILTERS.forEach((name) => {
      const value = document.querySelector(`select[name="${name}"]`).value;
      if (value) query.set(name, value);
    });
    try {
      const found = await get("dashboard/api/cases?" + query.toString());
      drawCases(found);
      drawPoints(found.points);
      status.textContent = "";
      document.body.dataset.ready = "yes";
    } catch (error) {
      status.textContent = error.message;
    }
  }

  async function start() {
    document.querySelectorAll("[data-text]").forEach((node) => { node.textContent = t(node.dataset.text); });
    status.textContent = t("loading");
    try {
      const overview = await get("dashboard/api/overview");
      fillFilters(overview.filters);
      drawMap(overview.map);
      drawPerformance(overview.performance);
    } catch (error) {
      status.textContent = error.message;
      document.body.dataset.ready = "denied";
      return;
    }
    await loadCases();
  }

  start();
})();
