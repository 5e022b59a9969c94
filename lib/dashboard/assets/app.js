// EdgeVPN dashboard: Preact + htm, no build step. State arrives by server-sent events.
import { h, render } from "./vendor/preact.mjs";
import { useEffect, useMemo, useRef, useState } from "./vendor/hooks.mjs";
import htm from "./vendor/htm.mjs";

const html = htm.bind(h);
const HISTORY = 120;
const SECTIONS = [
  ["overview", "Overview"],
  ["machines", "Machines"],
  ["services", "Services & files"],
  ["dns", "DNS"],
  ["ledger", "Ledger"],
  ["peers", "Peers"],
];

function bytes(n) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}
const rate = (n) => `${bytes(n)}/s`;
const short = (id) => id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id;

async function call(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) {
    let message = text;
    try {
      message = JSON.parse(text).error ?? text;
    } catch { /* not JSON */ }
    throw new Error(`${res.status}: ${message}`);
  }
  return text ? JSON.parse(text) : null;
}

function useHashSection() {
  const read = () => {
    const id = location.hash.replace(/^#\/?/, "");
    return SECTIONS.some(([s]) => s === id) ? id : "overview";
  };
  const [section, setSection] = useState(read);
  useEffect(() => {
    const on = () => setSection(read());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return section;
}

function useLiveState() {
  const [state, setState] = useState(null);
  const [connected, setConnected] = useState(false);
  const history = useRef({ t: [], rin: [], rout: [] });
  useEffect(() => {
    const source = new EventSource("/api/dashboard/events");
    source.addEventListener("state", (e) => {
      const s = JSON.parse(e.data);
      const hist = history.current;
      hist.t.push(Date.parse(s.time) / 1000);
      hist.rin.push(s.traffic.RateIn);
      hist.rout.push(s.traffic.RateOut);
      for (const k of ["t", "rin", "rout"]) if (hist[k].length > HISTORY) hist[k].shift();
      setState(s);
      setConnected(true);
    });
    source.onerror = () => setConnected(false);
    return () => source.close();
  }, []);
  return [state, connected, history.current];
}

function Card({ label, value, id }) {
  return html`
    <div class="card">
      <div class="label">${label}</div>
      <div class="value" id=${id}>${value}</div>
    </div>
  `;
}

function Chart({ history, tick }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    if (!box.current || typeof uPlot === "undefined") return;
    const width = box.current.clientWidth || 600;
    plot.current = new uPlot(
      {
        width,
        height: 180,
        title: "Traffic, all peers",
        axes: [{}, { values: (_u, v) => v.map(rate), size: 70 }],
        series: [
          {},
          { label: "in", stroke: "#1f8f4e", width: 2, value: (_u, v) => v == null ? "–" : rate(v) },
          {
            label: "out",
            stroke: "#1f5fbf",
            width: 2,
            value: (_u, v) => v == null ? "–" : rate(v),
          },
        ],
      },
      [[], [], []],
      box.current,
    );
    const resize = () => plot.current?.setSize({ width: box.current.clientWidth, height: 180 });
    addEventListener("resize", resize);
    return () => {
      removeEventListener("resize", resize);
      plot.current?.destroy();
    };
  }, []);
  useEffect(() => {
    plot.current?.setData([history.t.slice(), history.rin.slice(), history.rout.slice()]);
  }, [tick]);
  return html`
    <div class="chart" ref=${box} role="img"
      aria-label="Traffic in and out over the last two minutes"></div>
  `;
}

function Overview({ state, history }) {
  const s = state.summary;
  return html`
    <section aria-labelledby="summary-h">
      <h2 id="summary-h">Summary</h2>
      <div class="cards">
        <${Card} label="Machines" value=${s.Machines} id="count-machines" />
        <${Card} label="Peers connected" value=${s.Peers} id="count-peers" />
        <${Card} label="On the gossip topic" value=${s.OnChainNodes} />
        <${Card} label="Services" value=${s.Services} />
        <${Card} label="Files" value=${s.Files} />
        <${Card} label="DNS records" value=${s.DNS} />
        <${Card} label="Ledger height" value=${s.BlockChain} id="ledger-height" />
        <${Card} label="In" value=${rate(state.traffic.RateIn)} id="throughput-in" />
        <${Card} label="Out" value=${rate(state.traffic.RateOut)} id="throughput-out" />
        ${state.vpn && html`<${Card} label="VPN packets dropped" value=${state.vpn.dropped} />`}
      </div>
    </section>
    <section aria-labelledby="chart-h">
      <h2 id="chart-h">Throughput</h2>
      <${Chart} history=${history} tick=${state.time} />
    </section>
    <section aria-labelledby="blocks-h">
      <h2 id="blocks-h">Recent blocks</h2>
      ${state.blocks.length === 0
        ? html`<p class="note">No block since this page's node started.</p>`
        : html`
          <div class="scroll">
            <table>
              <caption>Newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Index</th>
                  <th scope="col">Time</th>
                  <th scope="col">Cause</th>
                  <th scope="col" class="hide-narrow">Hash</th>
                </tr>
              </thead>
              <tbody>${state.blocks.map((b) =>
                html`
                  <tr key=${b.Hash}>
                    <td>${b.Index}</td>
                    <td>${b.Timestamp}</td>
                    <td>${b.Cause}</td>
                    <td class="mono hide-narrow">${short(b.Hash)}</td>
                  </tr>
                `
              )}
                    </tbody>
            </table>
          </div>
        `}
    </section>
  `;
}

function Machines({ state }) {
  return html`
    <section aria-labelledby="machines-h">
      <h2 id="machines-h">Machines</h2>
      <div class="scroll">
        <table id="machines">
          <caption>${state.machines
            .length} machines in the ledger; throughput is live, per peer</caption>
          <thead>
            <tr>
              <th scope="col">Hostname</th>
              <th scope="col">Address</th>
              <th scope="col">State</th>
              <th scope="col">Throughput</th>
              <th scope="col" class="hide-narrow">OS</th>
              <th scope="col" class="hide-narrow">Version</th>
              <th scope="col" class="hide-narrow">Peer</th>
            </tr>
          </thead>
          <tbody>${state.machines.map((m) =>
            html`
              <tr key=${m.PeerID} data-peer=${m.PeerID}>
                <td>${m.Hostname || "—"}${m.Self ? " (this node)" : ""}</td>
                <td class="mono addr">${m.Address}</td>
                <td><span class=${`state ${m.Online ? "on" : "off"}`}>${m.Online
                  ? "online"
                  : "offline"}</span>${m.Connected ? ", connected" : ""}</td>
                <td class="rate" data-rate-peer=${m.PeerID}>${m.Self
                  ? "—"
                  : `↓ ${rate(m.RateIn)} ↑ ${rate(m.RateOut)}`}</td>
                <td class="hide-narrow">${m.OS}${m.Arch ? `/${m.Arch}` : ""}</td>
                <td class="hide-narrow">${m.Version}</td>
                <td class="mono hide-narrow" title=${m.PeerID}>${short(m.PeerID)}</td>
              </tr>
            `
          )}
          </tbody>
        </table>
      </div>
    </section>
  `;
}

function NamedList({ title, id, items, bucket, state, say }) {
  const [name, setName] = useState("");
  const add = async (e) => {
    e.preventDefault();
    try {
      await call("POST", `/api/dashboard/${bucket}`, { Name: name });
      say(`${title.slice(0, -1)} ${name} announced`);
      setName("");
    } catch (err) {
      say(`Cannot add ${name}: ${err.message}`);
    }
  };
  const remove = async (key) => {
    try {
      await call("DELETE", `/api/ledger/${bucket}/${encodeURIComponent(key)}`);
      say(`${key} removed`);
    } catch (err) {
      say(`Cannot remove ${key}: ${err.message}`);
    }
  };
  return html`<section aria-labelledby=${`${id}-h`}>
    <h2 id=${`${id}-h`}>${title}</h2>
    ${
    items.length === 0 ? html`<p class="note">None.</p>` : html`
      <div class="scroll">
        <table id=${id}>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Announced by</th>
              <th scope="col"><span class="hide-narrow">Action</span></th>
            </tr>
          </thead>
          <tbody>${items.map((s) =>
            html`
              <tr key=${s.Key}>
                <td>${s.Name || s.Key}</td>
                <td class="mono" title=${s.PeerID}>${short(s.PeerID)}</td>
                <td><button class="quiet" disabled=${!state.writable} onClick=${() =>
                  remove(s.Key)} aria-label=${`Remove ${s.Key}`}>Remove</button></td>
              </tr>
            `
          )}
            </tbody>
        </table>
      </div>
    `
  }
    <form class="inline" onSubmit=${add}>
      <label>Name<input value=${name} required maxlength="256" onInput=${(e) =>
    setName(e.target.value)} disabled=${!state.writable} /></label>
      <button type="submit" disabled=${!state.writable}>Announce from this node</button>
    </form>
  </section>`;
}

function Dns({ state, say }) {
  const [regex, setRegex] = useState("");
  const [type, setType] = useState("A");
  const [value, setValue] = useState("");
  const add = async (e) => {
    e.preventDefault();
    try {
      await call("POST", "/api/dns", { Regex: regex, Records: { [type]: value } });
      say(`DNS record ${regex} announced`);
      setRegex("");
      setValue("");
    } catch (err) {
      say(`Cannot add ${regex}: ${err.message}`);
    }
  };
  const remove = async (key) => {
    try {
      await call("DELETE", `/api/ledger/dns/${encodeURIComponent(key)}`);
      say(`DNS record ${key} removed`);
    } catch (err) {
      say(`Cannot remove ${key}: ${err.message}`);
    }
  };
  return html`<section aria-labelledby="dns-h">
    <h2 id="dns-h">DNS records</h2>
    ${
    state.dns.length === 0 ? html`<p class="note">No record.</p>` : html`
      <div class="scroll">
        <table id="dns">
          <thead>
            <tr>
              <th scope="col">Name (regular expression)</th>
              <th scope="col">Records</th>
              <th scope="col"><span class="hide-narrow">Action</span></th>
            </tr>
          </thead>
          <tbody>${state.dns.map((d) =>
            html`
              <tr key=${d.Regex}>
                <td class="mono">${d.Regex}</td>
                <td class="mono">${Object.entries(d.Records).map(([t, v]) => `${t} ${v}`).join(
                  ", ",
                )}</td>
                <td><button class="quiet" disabled=${!state.writable} onClick=${() =>
                  remove(d.Regex)} aria-label=${`Remove ${d.Regex}`}>Remove</button></td>
              </tr>
            `
          )}
            </tbody>
        </table>
      </div>
    `
  }
    <form class="inline" onSubmit=${add} aria-label="Add a DNS record">
      <label>Name<input id="dns-name" value=${regex} required placeholder="web.mesh." onInput=${(
    e,
  ) => setRegex(e.target.value)} disabled=${!state.writable} /></label>
      <label>Type<select id="dns-type" value=${type} onChange=${(e) =>
    setType(e.target.value)} disabled=${!state.writable}>
        ${
    ["A", "AAAA", "CNAME", "TXT", "MX", "SRV"].map((t) => html`<option value=${t}>${t}</option>`)
  }</select></label>
      <label>Value<input id="dns-value" value=${value} required placeholder="10.1.0.2" onInput=${(
    e,
  ) => setValue(e.target.value)} disabled=${!state.writable} /></label>
      <button type="submit" id="dns-add" disabled=${!state.writable}>Add record</button>
    </form>
  </section>`;
}

function Ledger({ state, say }) {
  const buckets = Object.keys(state.buckets).sort();
  const [bucket, setBucket] = useState("");
  const [entries, setEntries] = useState(null);
  const chosen = bucket || buckets[0] || "";
  useEffect(() => {
    if (!chosen) return;
    call("GET", `/api/ledger/${encodeURIComponent(chosen)}`).then(
      setEntries,
      (e) => say(e.message),
    );
  }, [chosen, state.summary.BlockChain]);
  const pretty = (text) => {
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      return text;
    }
  };
  const remove = async (key) => {
    try {
      await call("DELETE", `/api/ledger/${encodeURIComponent(chosen)}/${encodeURIComponent(key)}`);
      say(`${chosen}/${key} removed`);
    } catch (err) {
      say(`Cannot remove ${key}: ${err.message}`);
    }
  };
  return html`<section aria-labelledby="ledger-h">
    <h2 id="ledger-h">Ledger</h2>
    <label>Bucket<select value=${chosen} onChange=${(e) => setBucket(e.target.value)}>
      ${
    buckets.map((b) => html`<option value=${b}>${b} (${state.buckets[b]})</option>`)
  }</select></label>
    ${
    entries && html`
      <div class="scroll">
        <table>
          <caption>${chosen}: ${Object.keys(entries).length} keys</caption>
          <thead>
            <tr>
              <th scope="col">Key</th>
              <th scope="col">Value</th>
              <th scope="col"><span class="hide-narrow">Action</span></th>
            </tr>
          </thead>
          <tbody>${Object.entries(entries).map(([k, v]) =>
            html`
              <tr key=${k}>
                <td class="mono">${k}</td>
                <td>
                  <pre>${pretty(v)}</pre>
                </td>
                <td><button class="quiet" disabled=${!state.writable} onClick=${() =>
                  remove(k)} aria-label=${`Remove ${k}`}>Remove</button></td>
              </tr>
            `
          )}
            </tbody>
        </table>
      </div>
    `
  }
  </section>`;
}

function Peers({ state }) {
  const size = 360;
  const c = size / 2;
  const r = size / 2 - 60;
  const points = useMemo(() =>
    state.peers.map((p, i) => {
      const a = (2 * Math.PI * i) / Math.max(1, state.peers.length) - Math.PI / 2;
      return { ...p, x: c + r * Math.cos(a), y: c + r * Math.sin(a) };
    }), [state.peers.map((p) => p.ID + p.Connected).join()]);
  return html`
    <section aria-labelledby="peers-h">
      <h2 id="peers-h">Peers and connections</h2>
      <div class="graph">
        <svg viewBox=${`0 0 ${size} ${size}`} role="img" aria-label=${`This node and ${state.peers.length} peers; lines are open connections`}>
          ${points.filter((p) => p.Connected).map((p) =>
            html`
              <line x1=${c} y1=${c} x2=${p.x} y2=${p.y}>
                <title>${p.Transport} ${p.Direction}</title>
              </line>
            `
          )}
          <circle class="self" cx=${c} cy=${c} r="12"><title>this node ${state.node
            .id}</title></circle>
          ${points.map((p) =>
            html`
              <g>
                <circle class=${`peer ${p.Connected ? "connected" : ""}`} cx=${p.x} cy=${p.y} r="8">
                  <title>${p.ID}</title>
                </circle>
                <text x=${p.x} y=${p.y + 20} text-anchor="middle">${short(p.ID)}</text>
              </g>
            `
          )}
        </svg>
      </div>
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">Peer</th>
              <th scope="col">Connection</th>
              <th scope="col">Gossip topic</th>
              <th scope="col">Throughput</th>
            </tr>
          </thead>
          <tbody>${state.peers.map((p) =>
            html`
              <tr key=${p.ID}>
                <td class="mono" title=${p.ID}>${short(p.ID)}</td>
                <td>${p.Connected ? `${p.Transport}, ${p.Direction}` : "not connected"}</td>
                <td>${p.OnChain ? "yes" : "no"}</td>
                <td>↓ ${rate(p.RateIn)} ↑ ${rate(p.RateOut)}</td>
              </tr>
            `
          )}
          </tbody>
        </table>
      </div>
    </section>
  `;
}

function App() {
  const [state, connected, history] = useLiveState();
  const section = useHashSection();
  const [message, setMessage] = useState("");
  if (!state) return html`<p class="loading">Connecting to the node…</p>`;
  const say = (m) => setMessage(m);
  return html`
    <header>
      <h1>EdgeVPN</h1>
      <span class="id" title="Node ID">${state.node.id}</span>
      <span class="note">${state.node.version}${state.node.vpnAddress
        ? ` · ${state.node.vpnAddress}`
        : ""}${connected ? "" : " · reconnecting…"}</span>
      <nav aria-label="Sections"><ul>${SECTIONS.map(([id, label]) =>
        html`<li><a href=${`#/${id}`} aria-current=${
          section === id ? "page" : undefined
        }>${label}</a></li>`
      )}</ul></nav>
      ${state.writable
        ? html`<form method="post" action="/logout"><button class="quiet" type="submit">Log out</button></form>`
        : html`<span class="note">Read-only: open the login link that join or api printed to make changes.</span>`}
    </header>
    <main>
      <p class="status" role="status" aria-live="polite">${message}</p>
      ${section === "overview" && html`<${Overview} state=${state} history=${history} />`}
      ${section === "machines" && html`<${Machines} state=${state} />`}
      ${section === "services" && html`
        <${NamedList} title="Services" id="services" items=${state
          .services} bucket="services" state=${state}
          say=${say} />
        <${NamedList} title="Files" id="files" items=${state.files} bucket="files" state=${state}
          say=${say} />
      `}
      ${section === "dns" && html`<${Dns} state=${state} say=${say} />`}
      ${section === "ledger" && html`<${Ledger} state=${state} say=${say} />`}
      ${section === "peers" && html`<${Peers} state=${state} />`}
    </main>
  `;
}

render(html`<${App} />`, document.getElementById("app"));
