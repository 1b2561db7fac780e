import { Client, NoRespondersError, TimedOutError } from "@switchyard/client";

async function main(): Promise<void> {
  const client = await Client.connect(process.env.SWITCHYARD_ADDRESS ?? "127.0.0.1:50051");

  // 1. Publish/subscribe: every subscriber whose pattern matches gets a copy.
  const orders = await client.subscribe("orders.>"); // resolves once the broker has it
  await client.publish({
    topic: "orders.created",
    payload: '{"sku":"A1"}',
    headers: { source: "web" },
  });
  for await (const event of orders) {
    if (event.kind === "message") {
      console.log("subscriber got", event.message.topic, event.message.payload.toString());
      break; // leaving the loop unsubscribes
    }
    if (event.kind === "gap") {
      console.log(`subscriber fell behind and missed ${event.missed} messages`);
    } else {
      console.log(`disconnected (${event.error.message}); resubscribing`);
    }
  }

  // 2. Work queue: declare the group first, so it keeps messages published before anyone consumes.
  await client.admin.declareGroup({ topic: "images.resize", group: "workers", maxDeliveries: 3 });
  await client.publishBatch([
    { topic: "images.resize", payload: "cat.png" },
    { topic: "images.resize", payload: "dog.png" },
  ]);
  const workers = await client.consume({ topic: "images.resize", group: "workers", prefetch: 10 });
  let done = 0;
  for await (const delivery of workers) {
    const file = delivery.message.payload.toString();
    console.log("worker got", file, "attempt", delivery.attempt);
    if (file === "dog.png" && delivery.attempt === 1) {
      await delivery.nack(100); // failed: the broker redelivers it in 100 ms
      continue;
    }
    await delivery.ack(); // done: the broker forgets it
    if (++done === 2) {
      break; // leaves the group; anything unsettled would go to another worker
    }
  }

  // 3. Request/reply: a responder in group "upper" answers requests on "svc.upper".
  const responder = await client.serve("svc.upper", "upper", (request) =>
    request.payload.toString().toUpperCase(),
  );
  const reply = await client.request({ topic: "svc.upper", payload: "hello" }, { timeoutMs: 2000 });
  console.log("reply", reply.payload.toString());
  await responder.close();

  try {
    await client.request({ topic: "svc.nobody", payload: "anyone?" }, { timeoutMs: 2000 });
  } catch (error) {
    if (error instanceof NoRespondersError) {
      console.log("no responders for", error.topic);
    } else if (error instanceof TimedOutError) {
      console.log("no reply within", error.timeoutMs, "ms");
    } else {
      throw error;
    }
  }

  await client.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
