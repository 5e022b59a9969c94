import assert from "node:assert/strict";
import {
  allowedHostsFor,
  API_TOKEN_FILE,
  apiAccess,
  type ApiExposure,
  ApiSessions,
  exposureOf,
  loadOrCreateApiToken,
  readApiToken,
  SESSION_COOKIE,
} from "../../lib/api/auth.ts";
import { parseApiListen } from "../../lib/api/listen.ts";
import { rawHttp, startTestApi, tempDir, type TestApi } from "./helpers.ts";

const TOKEN = "t".repeat(43);

async function guardedApi(
  exposure: ApiExposure,
  token: string | null = TOKEN,
  listen = "127.0.0.1:0",
): Promise<TestApi & { sessions: ApiSessions }> {
  const sessions = new ApiSessions();
  const access = apiAccess({
    token: token ?? undefined,
    exposure,
    hosts: allowedHostsFor(parseApiListen("127.0.0.1:0"), ["vpn.example"]),
    sessions,
  });
  const api = await startTestApi({
    server: { listen, middleware: access.middleware, routes: access.routes },
  });
  return Object.assign(api, { sessions });
}

const bearer = (token = TOKEN) => ({ authorization: `Bearer ${token}` });

Deno.test("the API token is created once in the state directory, mode 0600, then reused", async () => {
  const tmp = await tempDir();
  try {
    const dir = `${tmp.dir}/state`;
    assert.equal(await readApiToken(dir), undefined);
    const first = await loadOrCreateApiToken(dir);
    assert.equal(first.created, true);
    assert.equal(first.path, `${dir}/${API_TOKEN_FILE}`);
    assert.match(first.token, /^[A-Za-z0-9_-]{43}$/);
    assert.equal((await Deno.stat(first.path)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
    const again = await loadOrCreateApiToken(dir);
    assert.deepEqual(again, { ...first, created: false });
    assert.equal(await readApiToken(dir), first.token);
    await Deno.writeTextFile(first.path, "short\n");
    await assert.rejects(() => loadOrCreateApiToken(dir), { code: "API_TOKEN_INVALID" });
  } finally {
    await tmp.remove();
  }
});

Deno.test("exposure: loopback hosts, the wildcard and unix sockets", () => {
  assert.equal(exposureOf(parseApiListen("127.0.0.1:8080")), "loopback");
  assert.equal(exposureOf(parseApiListen("[::1]:8080")), "loopback");
  assert.equal(exposureOf(parseApiListen("localhost:8080")), "loopback");
  assert.equal(exposureOf(parseApiListen(":8080")), "network");
  assert.equal(exposureOf(parseApiListen("0.0.0.0:8080")), "network");
  assert.equal(exposureOf(parseApiListen("10.1.0.1:8080")), "network");
  assert.equal(exposureOf(parseApiListen("unix:///run/e.sock")), "unix");
  const wildcard = allowedHostsFor(parseApiListen(":8080"), []);
  assert.ok(wildcard.includes("localhost") && wildcard.includes(Deno.hostname().toLowerCase()));
});

Deno.test("loopback: reads are open, writes need the token (401 JSON otherwise), a wrong token is 401", async () => {
  const api = await guardedApi("loopback");
  try {
    assert.equal((await api.request("/api/summary")).status, 200);
    const anonymous = await api.request("/api/ledger/b/k/v", { method: "PUT" });
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.json().error, /needs the API token/);
    assert.equal(anonymous.headers.get("www-authenticate"), 'Bearer realm="edgevpn"');
    assert.equal(anonymous.headers.get("content-type"), "application/json");
    for (const method of ["DELETE", "POST"]) {
      const path = method === "POST" ? "/api/dns" : "/api/ledger/b";
      assert.equal((await api.request(path, { method })).status, 401, method);
    }
    const put = await api.request("/api/ledger/b/k/v", { method: "PUT", headers: bearer() });
    assert.equal(put.status, 200);
    assert.deepEqual(put.json(), { State: "Announcing" });
    const wrong = await api.request("/api/summary", { headers: bearer("x".repeat(43)) });
    assert.equal(wrong.status, 401);
    assert.match(wrong.json().error, /wrong API token/);
  } finally {
    await api.close();
  }
});

Deno.test("network exposure: every request needs the token; a page request is sent to /login", async () => {
  const api = await guardedApi("network");
  try {
    const read = await api.request("/api/summary");
    assert.equal(read.status, 401);
    assert.equal(typeof read.json().error, "string");
    assert.equal((await api.request("/api/summary", { headers: bearer() })).status, 200);
    const page = await api.request("/", { headers: { accept: "text/html" }, redirect: "manual" });
    assert.equal(page.status, 303);
    assert.equal(page.headers.get("location"), "/login");
    assert.equal((await api.request("/login")).status, 200, "the login page is open");
  } finally {
    await api.close();
  }
});

Deno.test("a unix socket needs no token (its file mode decides); --api-auth=false opens TCP writes", async () => {
  const tmp = await tempDir();
  const socket = `${tmp.dir}/api.sock`;
  const unix = await guardedApi("unix", TOKEN, `unix://${socket}`);
  const open = await guardedApi("loopback", null);
  try {
    const res = await rawHttp(
      { transport: "unix", path: socket } as Deno.UnixConnectOptions,
      "PUT /api/ledger/b/k/v HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n",
    );
    assert.equal(res.status, 200);
    assert.equal((await open.request("/api/ledger/b/k/v", { method: "PUT" })).status, 200);
    assert.equal((await open.request("/login")).status, 404, "no login without a token");
  } finally {
    await unix.close();
    await open.close();
    await tmp.remove();
  }
});

Deno.test("Host must name this server: evil.example is 403 (DNS rebinding), configured names pass", async () => {
  const api = await guardedApi("loopback");
  try {
    const port = Number(new URL(api.base).port);
    const at = { hostname: "127.0.0.1", port };
    const ask = (host: string) =>
      rawHttp(at, `GET /api/ledger HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    const evil = await ask(`evil.example:${port}`);
    assert.equal(evil.status, 403);
    assert.match(JSON.parse(evil.body).error, /Host header/);
    assert.equal((await ask(`127.0.0.2.nip.example:${port}`)).status, 403);
    for (
      const ok of [`127.0.0.1:${port}`, `localhost:${port}`, "LOCALHOST", "[::1]", "vpn.example"]
    ) {
      assert.equal((await ask(ok)).status, 200, ok);
    }
    // With the token too: the Host check comes first.
    const withToken = await rawHttp(
      at,
      `PUT /api/ledger/b/k/v HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(withToken.status, 403);
  } finally {
    await api.close();
  }
});

Deno.test("requests from other origins are refused, even with the token; no CORS headers", async () => {
  const api = await guardedApi("loopback");
  try {
    const forged = await api.request("/api/ledger/b/k/v", {
      method: "PUT",
      headers: { ...bearer(), origin: "http://evil.example" },
    });
    assert.equal(forged.status, 403);
    assert.match(forged.json().error, /cross-origin/);
    const read = await api.request("/api/ledger", { headers: { origin: "http://evil.example" } });
    assert.equal(read.status, 403);
    assert.equal(read.headers.get("access-control-allow-origin"), null);
    const nullOrigin = await api.request("/api/summary", { headers: { origin: "null" } });
    assert.equal(nullOrigin.status, 403);
    const site = await api.request("/api/summary", { headers: { "sec-fetch-site": "cross-site" } });
    assert.equal(site.status, 403);
    const sameSite = await api.request("/api/summary", {
      headers: { "sec-fetch-site": "same-site" },
    });
    assert.equal(sameSite.status, 403, "another port of this host is another origin");
    const preflight = await api.request("/api/dns", {
      method: "OPTIONS",
      headers: { origin: "http://evil.example", "access-control-request-method": "POST" },
    });
    assert.equal(preflight.status, 403);
    assert.equal(preflight.headers.get("access-control-allow-origin"), null);
    const same = await api.request("/api/summary", {
      headers: { origin: api.base, "sec-fetch-site": "same-origin" },
    });
    assert.equal(same.status, 200);
  } finally {
    await api.close();
  }
});

Deno.test("the one-time login link sets an HttpOnly SameSite=Strict session cookie that allows writes", async () => {
  const api = await guardedApi("network");
  try {
    const code = api.sessions.newLoginCode();
    const login = await api.request(`/login?code=${code}`, { redirect: "manual" });
    assert.equal(login.status, 303);
    assert.equal(login.headers.get("location"), "/");
    const cookie = login.headers.get("set-cookie")!;
    assert.match(cookie, new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9_-]{43};`));
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    const session = cookie.split(";")[0];
    const put = await api.request("/api/ledger/b/k/v", {
      method: "PUT",
      headers: { cookie: session },
    });
    assert.equal(put.status, 200);
    const again = await api.request(`/login?code=${code}`, { redirect: "manual" });
    assert.equal(again.status, 401, "the link works once");
    assert.equal(again.headers.get("set-cookie"), null);
    const forged = await api.request("/api/summary", {
      headers: { cookie: `${SESSION_COOKIE}=x` },
    });
    assert.equal(forged.status, 401);
    const logout = await api.request("/logout", {
      method: "POST",
      headers: { cookie: session },
      redirect: "manual",
    });
    assert.equal(logout.status, 303);
    assert.equal((await api.request("/api/summary", { headers: { cookie: session } })).status, 401);
  } finally {
    await api.close();
  }
});

Deno.test("the login form takes the token; a wrong one or another origin's post is refused", async () => {
  const api = await guardedApi("network");
  try {
    const post = (token: string, headers: Record<string, string> = {}) =>
      api.request("/login", {
        method: "POST",
        body: new URLSearchParams({ token }),
        headers,
        redirect: "manual",
      });
    const ok = await post(TOKEN);
    assert.equal(ok.status, 303);
    assert.match(ok.headers.get("set-cookie")!, /HttpOnly/);
    assert.equal((await post("nope")).status, 401);
    assert.equal((await post(TOKEN, { origin: "http://evil.example" })).status, 403);
    assert.ok(
      !api.logs.some((r) => JSON.stringify(r).includes(TOKEN)),
      "the token is never logged",
    );
  } finally {
    await api.close();
  }
});

Deno.test("a Host missing from the list is looked up again (an interface that came up later)", async () => {
  const interfaces = ["127.0.0.1"];
  const access = apiAccess({
    token: TOKEN,
    exposure: "network",
    hosts: ["127.0.0.1"],
    refreshHosts: () => interfaces,
    sessions: new ApiSessions(),
  });
  const api = await startTestApi({
    server: { middleware: access.middleware, routes: access.routes },
  });
  try {
    const at = { hostname: "127.0.0.1", port: Number(new URL(api.base).port) };
    interfaces.push("10.1.0.7");
    const res = await rawHttp(
      at,
      `GET /api/summary HTTP/1.1\r\nHost: 10.1.0.7:8080\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(res.status, 200);
    const other = await rawHttp(
      at,
      `GET /api/summary HTTP/1.1\r\nHost: 10.9.9.9\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(other.status, 403);
  } finally {
    await api.close();
  }
});
