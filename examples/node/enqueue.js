// Enqueue one Herald send job from Node.js with celery-node, then wait for its outcome
// event on the stream. No Herald code: the task name, the queue and the job are the API
// (docs/contract.md).
//
//   HERALD_BROKER_URL=redis://127.0.0.1:6379/0 node enqueue.js job.json
//
// Prints the outcome event as one JSON line; exits 0 when it came, 1 when none came in
// HERALD_WAIT_S seconds (default 60).
"use strict";

const fs = require("fs");
const crypto = require("crypto");
const Redis = require("ioredis");
const { createClient } = require("celery-node");

const broker = process.env.HERALD_BROKER_URL || "redis://127.0.0.1:6379/0";
const stateUrl = process.env.HERALD_REDIS_URL || broker; // outcome events live here
const queue = process.env.HERALD_QUEUE || "herald";
const stream = process.env.HERALD_EVENTS_STREAM || "herald:events";
const waitSeconds = Number(process.env.HERALD_WAIT_S || 60);

// The stream's newest id: read it *before* enqueueing, so the event cannot slip past.
async function streamEnd(redis) {
  const [newest] = await redis.xrevrange(stream, "+", "-", "COUNT", 1);
  return newest ? newest[0] : "0-0";
}

async function enqueue(client, job) {
  // celery-node builds the protocol-2 message; Herald wants the job as kwargs.job.
  const message = client.createTaskMessage(job.job_id, "herald.send_message", [], { job });
  // What Flower and the worker's log show instead of the job, which holds personal data.
  message.headers.argsrepr = "()";
  message.headers.kwargsrepr = `{'job': <job ${job.job_id}>}`;
  await client.broker.publish(message.body, "", queue, message.headers, message.properties);
}

// XREAD from the position taken before enqueueing until the job's event comes.
async function waitForOutcome(redis, jobId, after, deadline) {
  let last = after;
  while (Date.now() < deadline) {
    const block = Math.max(1, Math.min(5000, deadline - Date.now()));
    const reply = await redis.xread("COUNT", 100, "BLOCK", block, "STREAMS", stream, last);
    for (const [, entries] of reply || []) {
      for (const [id, flat] of entries) {
        last = id;
        const fields = {};
        for (let i = 0; i < flat.length; i += 2) fields[flat[i]] = flat[i + 1];
        if (fields.job_id === jobId) {
          return { id, event: fields.event, job_id: fields.job_id, data: JSON.parse(fields.data) };
        }
      }
    }
  }
  return null;
}

async function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2] || 0, "utf8"));
  job.job_id = job.job_id || crypto.randomUUID(); // the idempotency key: keep it stable
  job.enqueued_at = job.enqueued_at || new Date().toISOString(); // retries age from it

  // celery-node wants a result backend; Herald writes no results, nothing is read there.
  const client = createClient(broker, broker, queue);
  const state = new Redis(stateUrl);
  try {
    await client.isReady();
    const after = await streamEnd(state);
    await enqueue(client, job);
    console.error(`enqueued ${job.job_id} on ${queue}; waiting for its outcome`);
    const outcome = await waitForOutcome(state, job.job_id, after, Date.now() + waitSeconds * 1000);
    if (outcome === null) {
      console.error(`no outcome for ${job.job_id} within ${waitSeconds}s`);
      process.exitCode = 1;
      return;
    }
    console.log(JSON.stringify(outcome));
  } finally {
    await client.disconnect();
    state.disconnect();
  }
}

main().catch((error) => {
  console.error(`herald producer: ${error.message}`);
  process.exit(2);
});
