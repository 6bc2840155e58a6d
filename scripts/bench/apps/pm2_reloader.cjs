// Reloads a PM2 app through PM2's API (one long-lived client, so no CLI start-up
// cost lands in the measurement): `pm2.reload(name)` every INTERVAL ms (or as
// soon as the previous reload returned, if it took longer) until DURATION ms
// have passed. Prints one JSON line: {"reloads": n, "errors": n, "ms": [...]}.
//
//   PM2_HOME=... node pm2_reloader.cjs /path/to/node_modules/pm2 NAME INTERVAL DURATION
"use strict";
const [pm2Path, name, interval, duration] = process.argv.slice(2);
const pm2 = require(pm2Path);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

pm2.connect(false, async (err) => {
  if (err) {
    console.error(err);
    process.exit(2);
  }
  const end = Date.now() + Number(duration);
  const ms = [];
  let errors = 0;
  while (Date.now() < end) {
    const t0 = Date.now();
    await new Promise((resolve) =>
      pm2.reload(name, (e) => {
        if (e) errors++;
        resolve();
      })
    );
    ms.push(Date.now() - t0);
    const left = Number(interval) - (Date.now() - t0);
    if (left > 0) await sleep(left);
  }
  console.log(JSON.stringify({ reloads: ms.length, errors, ms }));
  pm2.disconnect();
  process.exit(0);
});
