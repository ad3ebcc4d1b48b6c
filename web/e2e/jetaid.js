// Runs a jetaid process for the node suites (browser and client tests):
// a free loopback port, the start, the wait for /health, the stop. What a
// suite configures and asserts stays in its own helper.
import { spawn } from "node:child_process";
import { createServer } from "node:net";

// freePort returns a loopback port that was free a moment ago.
export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => ok(p));
    });
    s.on("error", fail);
  });
}

// runJetaid starts bin with args, waits until http://127.0.0.1:port/health
// answers 200 (or fails with the daemon's output after timeoutMs), and
// returns {url, log(), stop()}; stop sends SIGTERM (SIGKILL after 15 s) and
// then calls cleanup, if given.
export async function runJetaid({ bin, args, port, timeoutMs = 30000, cleanup }) {
  let out = "";
  const proc = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  proc.stdout.on("data", b => { out += b; });
  proc.stderr.on("data", b => { out += b; });
  const exited = new Promise(ok => proc.on("exit", code => ok(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`jetaid exited (${proc.exitCode}):\n${out}`);
    try {
      const r = await fetch(url + "/health");
      if (r.status === 200) break;
    } catch (_) { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`jetaid not healthy after ${timeoutMs / 1000} s:\n${out}`);
    await new Promise(ok => setTimeout(ok, 100));
  }
  return {
    url,
    log: () => out,
    async stop() {
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 15000);
      await exited;
      clearTimeout(t);
      if (cleanup) cleanup();
    },
  };
}
