import { expect, test } from "vitest";
import { ConfigError } from "./config.js";
import { isTracing, startTracing, tracingSettings } from "./tracing.js";

test("tracing is off unless an OTLP endpoint is set, and OTEL_SDK_DISABLED or OTEL_TRACES_EXPORTER=none turn it off", async () => {
  expect(tracingSettings({})).toBeUndefined();
  expect(await startTracing("unit", {})).toBeUndefined();
  expect(isTracing()).toBe(false);
  const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" };
  expect(tracingSettings(endpoint)).toEqual({ protocol: "http/protobuf" });
  expect(tracingSettings({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://collector:4318/v1/traces", OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" })).toEqual({ protocol: "http/json" });
  expect(tracingSettings({ ...endpoint, OTEL_SDK_DISABLED: "true" })).toBeUndefined();
  expect(tracingSettings({ ...endpoint, OTEL_TRACES_EXPORTER: "none" })).toBeUndefined();
});

test("tracing: an exporter or protocol Taskboard does not ship is a configuration error naming the variable", () => {
  const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" };
  expect(() => tracingSettings({ ...endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).toThrow(ConfigError);
  expect(() => tracingSettings({ ...endpoint, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "grpc" })).toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL/);
  expect(() => tracingSettings({ ...endpoint, OTEL_TRACES_EXPORTER: "zipkin" })).toThrow(/OTEL_TRACES_EXPORTER/);
});
