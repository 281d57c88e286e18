// The official OpenAI Node SDK against llmesh-gateway: streams a chat
// completion and a completion, gets embeddings and the model list, structured
// output (response_format json_schema) and tool calls (whole and through the
// SDK's stream helper), and sees a missing key as AuthenticationError. Starts tokenizer, engine and gateway
// as processes on 127.0.0.1 with stories260K.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import OpenAI from "openai";

const [binDir, modelDir] = process.argv.slice(2);
const tmp = mkdtempSync(join(tmpdir(), "llmesh-openai-"));
const children = [];

function start(name, args) {
  const portFile = join(tmp, `${name}.port`);
  const child = spawn(join(binDir, name), ["--listen", "127.0.0.1:0", "--port-file", portFile, "--log-level", "warn", ...args],
                      { stdio: ["ignore", "inherit", "inherit"] });
  children.push(child);
  return portFile;
}
async function waitFile(path, ms = 30000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (existsSync(path)) {
      const v = parseInt(readFileSync(path, "utf8"), 10);
      if (v > 0) return v;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${path}`);
}
function stopAll() { for (const c of children) { try { c.kill("SIGTERM"); } catch {} } }
process.on("exit", stopAll);

async function main() {
  const tokPort = await waitFile(start("llmesh-tokenizer", ["--model-dir", modelDir]));
  const httpPortFile = join(tmp, "http.port");
  const gwPort = await waitFile(start("llmesh-gateway", [
    "--tokenizer", `127.0.0.1:${tokPort}`, "--http-listen", "127.0.0.1:0", "--http-port-file", httpPortFile,
    "--api-keys", "sk-test", "--model", "stories260K", "--health-interval", "200ms"]));
  const httpPort = await waitFile(httpPortFile);
  await waitFile(start("llmesh-engine", ["--model-dir", modelDir, "--model", "stories260K", "--threads", "1",
                                         "--kv-budget-mb", "16", "--gateway", `127.0.0.1:${gwPort}`]));
  const client = new OpenAI({ apiKey: "sk-test", baseURL: `http://127.0.0.1:${httpPort}/v1`, maxRetries: 0 });

  // Wait until the worker has registered.
  const until = Date.now() + 30000;
  let models;
  for (;;) {
    models = await client.models.list();
    if (models.data.length > 0) break;
    if (Date.now() > until) throw new Error("no model listed");
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(models.data[0].id, "stories260K");
  assert.equal(models.data[0].object, "model");

  // Streamed chat completion.
  const chat = await client.chat.completions.create({
    model: "stories260K", stream: true, max_tokens: 24, temperature: 0, stream_options: { include_usage: true },
    messages: [{ role: "system", content: "You tell stories." }, { role: "user", content: "Once upon a time" }],
  });
  let chatText = "", chunks = 0, finish = null, usage = null;
  for await (const chunk of chat) {
    chunks++;
    assert.equal(chunk.object, "chat.completion.chunk");
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      chatText += c.delta?.content ?? "";
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(chunks > 2, `only ${chunks} chunks`);
  assert.ok(chatText.length > 0);
  assert.equal(finish, "length");
  assert.equal(usage.completion_tokens, 24);

  // Non-streamed equals streamed (greedy).
  const whole = await client.chat.completions.create({
    model: "stories260K", max_tokens: 24, temperature: 0,
    messages: [{ role: "system", content: "You tell stories." }, { role: "user", content: "Once upon a time" }],
  });
  assert.equal(whole.choices[0].message.content, chatText);

  // Streamed completion, with a stop string.
  const comp = await client.completions.create({ model: "stories260K", prompt: "Once upon a time", max_tokens: 32,
                                                temperature: 0, stream: true });
  let compText = "";
  for await (const chunk of comp) compText += chunk.choices[0]?.text ?? "";
  assert.ok(compText.length > 0);
  const stopped = await client.completions.create({ model: "stories260K", prompt: "Once upon a time", max_tokens: 32,
                                                   temperature: 0, stop: [compText.slice(8, 12)] });
  assert.equal(stopped.choices[0].text, compText.slice(0, compText.indexOf(compText.slice(8, 12))));
  assert.equal(stopped.choices[0].finish_reason, "stop");

  // Embeddings.
  const emb = await client.embeddings.create({ model: "stories260K", input: ["hello", "a story"] });
  assert.equal(emb.data.length, 2);
  assert.ok(emb.data[0].embedding.length > 0);
  assert.equal(typeof emb.data[0].embedding[0], "number");

  // Structured output: response_format json_schema; hot sampling, the answer still parses and fits.
  const person = { type: "object", additionalProperties: false, required: ["name", "age"],
                   properties: { name: { type: "string", minLength: 1, maxLength: 10 },
                                 age: { type: "integer", minimum: 0, maximum: 99 } } };
  for (const seed of [1, 2, 3]) {
    const structured = await client.chat.completions.create({
      model: "stories260K", temperature: 1.5, seed, max_tokens: 200,
      messages: [{ role: "user", content: "A person, as JSON." }],
      response_format: { type: "json_schema", json_schema: { name: "person", schema: person, strict: true } },
    });
    assert.equal(structured.choices[0].finish_reason, "stop");
    const p = JSON.parse(structured.choices[0].message.content);
    assert.deepEqual(Object.keys(p).sort(), ["age", "name"]);
    assert.equal(typeof p.name, "string");
    assert.ok(Number.isInteger(p.age) && p.age >= 0 && p.age <= 99, JSON.stringify(p));
  }

  // Tools: a required call comes back as tool_calls, whole and through the SDK's stream helper.
  const tools = [{ type: "function", function: {
    name: "get_weather", description: "Weather forecast for a city",
    parameters: { type: "object", additionalProperties: false, required: ["city", "days"],
                  properties: { city: { type: "string", minLength: 1, maxLength: 12 },
                                days: { type: "integer", minimum: 1, maximum: 7 } } } } }];
  const checkCall = (call) => {
    assert.equal(call.type, "function");
    assert.ok(call.id.length > 0);
    assert.equal(call.function.name, "get_weather");
    const args = JSON.parse(call.function.arguments);
    assert.equal(typeof args.city, "string");
    assert.ok(Number.isInteger(args.days) && args.days >= 1 && args.days <= 7, call.function.arguments);
  };
  const called = await client.chat.completions.create({
    model: "stories260K", temperature: 1.2, seed: 4, max_tokens: 200, tools, tool_choice: "required",
    messages: [{ role: "user", content: "Weather in Paris?" }],
  });
  assert.equal(called.choices[0].finish_reason, "tool_calls");
  assert.equal(called.choices[0].message.content, null);
  checkCall(called.choices[0].message.tool_calls[0]);
  const stream = client.chat.completions.stream({
    model: "stories260K", temperature: 1.2, seed: 5, max_tokens: 200, tools,
    tool_choice: { type: "function", function: { name: "get_weather" } },
    messages: [{ role: "user", content: "Weather in Oslo?" }],
  });
  const streamedCall = await stream.finalChatCompletion();
  assert.equal(streamedCall.choices[0].finish_reason, "tool_calls");
  checkCall(streamedCall.choices[0].message.tool_calls[0]);
  // The call and its result go back into the conversation.
  const followUp = await client.chat.completions.create({
    model: "stories260K", max_tokens: 8, temperature: 0, tools, tool_choice: "none",
    messages: [{ role: "user", content: "Weather in Paris?" }, called.choices[0].message,
               { role: "tool", tool_call_id: called.choices[0].message.tool_calls[0].id, content: "sunny" }],
  });
  assert.equal(typeof followUp.choices[0].message.content, "string");
  await assert.rejects(client.chat.completions.create({
    model: "stories260K", max_tokens: 4, messages: [{ role: "user", content: "x" }],
    tools: [{ type: "function", function: { name: "f", parameters: { type: "string", format: "email" } } }],
  }), (e) => e instanceof OpenAI.BadRequestError && /format/.test(e.message));

  // Errors as the SDK types them.
  const anon = new OpenAI({ apiKey: "wrong", baseURL: `http://127.0.0.1:${httpPort}/v1`, maxRetries: 0 });
  await assert.rejects(anon.models.list(), (e) => e instanceof OpenAI.AuthenticationError);
  await assert.rejects(client.chat.completions.create({ model: "stories260K", messages: [], max_tokens: 4 }),
                       (e) => e instanceof OpenAI.BadRequestError && e.message.length > 0);
  console.log(`openai node sdk: ok (chat ${JSON.stringify(chatText.slice(0, 40))}..., ${chunks} chunks)`);
}

main().then(() => { stopAll(); process.exit(0); },
            (e) => { console.error(e); stopAll(); process.exit(1); });
