// Injected into a copy of a Snakemake report by tests/browser.py: visits every menu entry
// and result, and appends its record ({errors, visited}) to the page as a pre element.
(function () {
  const errors = [], visited = [];
  window.addEventListener("error", (e) => errors.push("uncaught: " + e.message));
  const consoleError = console.error.bind(console);
  console.error = (...args) => { errors.push("console: " + args.map(String).join(" ")); consoleError(...args); };
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  // Menu entries (categories, subcategories) are links with a text; results are table rows
  // whose eye button opens them inside the report (a download link leaves the page: skipped).
  const menu = () => [...document.querySelectorAll("a.transition-all")].filter((a) => a.querySelector("span"));
  const entries = () => menu().map((a) => a.textContent.trim());
  const eyes = () => [...document.querySelectorAll('a[iconname="eye"]')].filter((a) => a.getAttribute("href") === "#");
  const open = (text) => {
    const link = menu().find((a) => a.textContent.trim() === text);
    if (link) link.click();
    return Boolean(link);
  };
  const blank = (where) => {
    if (document.body.innerText.trim().length < 20) errors.push("blank page after " + where);
  };
  async function go(path) {
    const home = document.querySelector("nav ol li a");
    if (home) home.click();
    await sleep(100);
    for (const step of path) {
      if (!open(step)) return false;
      await sleep(100);
    }
    return true;
  }
  async function visit(path) {
    if (path.length > 4) return;
    await go(path);
    const skip = path.length === 0 ? ["Workflow", "Statistics", "About"] : [];
    const here = entries().filter((name) => !skip.includes(name));
    for (const name of here) {
      const next = [...path, name];
      if (!(await go(next))) { errors.push("menu entry lost on the way to " + next.join(" > ")); continue; }
      visited.push(next.join(" > "));
      blank(next.join(" > "));
      const results = eyes().length;
      for (let i = 0; i < results; i++) {
        await go(next);
        const eye = eyes()[i];
        if (!eye) { errors.push("result " + (i + 1) + " lost in " + next.join(" > ")); continue; }
        eye.click();
        await sleep(100);
        visited.push(next.join(" > ") + " > result " + (i + 1));
        blank(next.join(" > ") + " > result " + (i + 1));
      }
      if (JSON.stringify(entries()) !== JSON.stringify(here)) await visit(next);
    }
  }
  window.addEventListener("load", () => setTimeout(async () => {
    try { await visit([]); } catch (e) { errors.push("crawler: " + e); }
    const out = document.createElement("pre");
    out.id = "crawl-record";
    out.textContent = JSON.stringify({ errors, visited });
    document.documentElement.appendChild(out);
  }, 300));
})();
