// A tiny MCP server over stdio (newline-delimited JSON-RPC) for the tests: one tool,
// `shout`, that answers its `text` in capitals. It writes a line to the file named by
// MCP_ECHO_LOG (if set) for every request, so a test can see it was started and called.
const fs = require('fs');
const readline = require('readline');
const log = process.env.MCP_ECHO_LOG;
const note = (m) => { if (log) fs.appendFileSync(log, m + '\n'); };
const send = (o) => process.stdout.write(JSON.stringify(o) + '\n');
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  let msg;
  try { msg = JSON.parse(line); } catch (e) { return; }
  note(msg.method || 'reply');
  if (msg.id === undefined) return;
  if (msg.method === 'initialize') {
    send({ jsonrpc: '2.0', id: msg.id, result: {
      protocolVersion: (msg.params && msg.params.protocolVersion) || '2025-06-18',
      capabilities: { tools: { listChanged: false } },
      serverInfo: { name: 'echo', version: '1.0.0' } } });
  } else if (msg.method === 'tools/list') {
    send({ jsonrpc: '2.0', id: msg.id, result: { tools: [{
      name: 'shout', description: 'Repeats the text in capitals',
      inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] } }] } });
  } else if (msg.method === 'tools/call') {
    const text = String((msg.params.arguments || {}).text || '');
    note('call ' + text);
    send({ jsonrpc: '2.0', id: msg.id, result: { content: [{ type: 'text', text: 'ECHO: ' + text.toUpperCase() }], isError: false } });
  } else {
    send({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'no such method' } });
  }
});
