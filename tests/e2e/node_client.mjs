// A small MCP client CLI on npm @modelcontextprotocol/client 2.x (the v2 TypeScript SDK), so tests
// can drive Gantry (or a server) with a second, independent 2026-07-28 implementation.
//
// Usage: node node_client.mjs URL [--mode auto|legacy|2026-07-28] ACTION...
//   ACTION = list                  -> {"action":"list","tools":[sorted names]}
//          | call:NAME:JSONARGS    -> {"action":"call","name":NAME,"text":...,"isError":...}
// The first line is {"negotiated":VERSION,"era":"modern"|"legacy"}; one JSON line per action follows.
// Elicitation requests (legacy server->client requests, or 2026-07-28 input_required rounds, which
// the SDK fulfils through the same handler) are accepted with {"ok": true}.
// Exits 2 on bad usage, 1 on any error (message on stderr).

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

function usage(message) {
    process.stderr.write(`${message}\nusage: node node_client.mjs URL [--mode auto|legacy|2026-07-28] ACTION...\n`);
    process.exit(2);
}

function parseArgs(argv) {
    const [url, ...rest] = argv;
    if (!url) usage('missing URL');
    let mode = 'auto';
    const actions = [];
    for (let i = 0; i < rest.length; i++) {
        if (rest[i] === '--mode') mode = rest[++i];
        else actions.push(rest[i]);
    }
    if (!['auto', 'legacy', '2026-07-28'].includes(mode)) usage(`unknown mode ${mode}`);
    for (const a of actions) if (a !== 'list' && !a.startsWith('call:')) usage(`unknown action ${a}`);
    return { url, mode, actions };
}

// 'auto' probes server/discover and falls back to initialize; a version string pins that era.
const negotiation = mode => (mode === 'auto' || mode === 'legacy' ? { mode } : { mode: { pin: mode } });

function parseCall(action) {
    const rest = action.slice('call:'.length);
    const sep = rest.indexOf(':');
    const name = sep < 0 ? rest : rest.slice(0, sep);
    const args = sep < 0 ? {} : JSON.parse(rest.slice(sep + 1));
    return { name, args };
}

async function main() {
    const { url, mode, actions } = parseArgs(process.argv.slice(2));
    const client = new Client(
        { name: 'gantry-node-client', version: '1.0.0' },
        { capabilities: { elicitation: { form: {} } }, versionNegotiation: negotiation(mode) }
    );
    client.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { ok: true } }));
    await client.connect(new StreamableHTTPClientTransport(new URL(url)));
    const out = obj => process.stdout.write(JSON.stringify(obj) + '\n');
    try {
        out({ negotiated: client.getNegotiatedProtocolVersion() ?? null, era: client.getProtocolEra() ?? null });
        let listed = false;
        for (const action of actions) {
            if (action === 'list' || !listed) {
                // Calls need a listing first: it is where the client learns x-mcp-header parameters.
                const { tools } = await client.listTools();
                listed = true;
                if (action === 'list') {
                    out({ action: 'list', tools: tools.map(t => t.name).sort() });
                    continue;
                }
            }
            const { name, args } = parseCall(action);
            const result = await client.callTool({ name, arguments: args });
            const text = (result.content ?? []).filter(b => b.type === 'text').map(b => b.text).join('\n');
            out({ action: 'call', name, text, isError: Boolean(result.isError) });
        }
    } finally {
        await client.close();
    }
}

main().catch(err => {
    process.stderr.write(`node_client: ${err?.name ?? "Error"}: ${err?.message ?? err}\n`);
    process.exit(1);
});
