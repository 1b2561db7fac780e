// One real switchyard broker process of a test, on a loopback port the kernel picked.

package dev.switchyard.client;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;

/**
 * Runs {@code $SWITCHYARD_BIN serve} with {@code --listen 127.0.0.1:0} (or the address of a broker
 * killed before, to restart it there) and {@code --ready-file}, and waits for the ready file, which
 * names the port the kernel gave it: no port is found free and released for another process to
 * take, and no log line is parsed. The dashboard's HTTP listener is off, so brokers never compete
 * for its port.
 */
final class Broker implements AutoCloseable {
  private static final Duration READY_TIMEOUT = Duration.ofSeconds(15);
  private static final Pattern READY = Pattern.compile("\"listen\"\\s*:\\s*\"([^\"]+)\".*\"pid\"\\s*:\\s*(\\d+)");

  /** Every broker still running, killed when the JVM exits however the tests ended. */
  private static final Set<Process> RUNNING = ConcurrentHashMap.newKeySet();

  static {
    Runtime.getRuntime().addShutdownHook(new Thread(() -> RUNNING.forEach(Process::destroyForcibly)));
  }

  private final Process process;
  private final String address;
  private final List<String> flags;
  private final Path log;
  private final Path files;

  private Broker(Process process, String address, List<String> flags, Path log, Path files) {
    this.process = process;
    this.address = address;
    this.flags = flags;
    this.log = log;
    this.files = files;
  }

  /**
   * The binary under test. Without SWITCHYARD_BIN the tests are skipped on a developer's machine and
   * fail in CI (CI=true), where a skip would hide that nothing ran.
   */
  static Path binary() {
    String bin = System.getenv("SWITCHYARD_BIN");
    if (bin == null || bin.isEmpty()) {
      if ("true".equals(System.getenv("CI"))) {
        fail("SWITCHYARD_BIN is not set: CI must test against the switchyard binary");
      }
      Assumptions.abort("SWITCHYARD_BIN is not set; build the server and point it at target/debug/switchyard");
    }
    Path path = Path.of(bin);
    if (!Files.isExecutable(path)) {
      fail("SWITCHYARD_BIN=" + bin + " is not an executable file");
    }
    return path;
  }

  /** Starts a broker on a port of the kernel's choice, with extra flags; its files go under files. */
  static Broker start(List<String> flags, Path files) throws IOException, InterruptedException {
    return launch("127.0.0.1:0", flags, files);
  }

  /** The same broker started again, empty, on the same address, after this one was killed. */
  Broker restart() throws IOException, InterruptedException {
    kill();
    return launch(address, flags, files);
  }

  private static Broker launch(String listen, List<String> flags, Path files) throws IOException, InterruptedException {
    Path dir = Files.createTempDirectory(files, "broker");
    Path ready = dir.resolve("ready.json");
    Path log = dir.resolve("switchyard.log");
    List<String> command = new ArrayList<>(List.of(
        binary().toString(), "serve", "--listen", listen, "--ready-file", ready.toString(), "--http", "off"));
    command.addAll(flags);
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
    builder.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
    Map<String, String> env = builder.environment();
    // The broker runs as the test says wherever the suite runs: no SWITCHYARD_* setting leaks in.
    env.keySet().removeIf(name -> name.startsWith("SWITCHYARD_"));
    env.put("RUST_LOG", "info");
    env.put("NO_COLOR", "1");
    Process process = builder.start();
    RUNNING.add(process);
    long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
    while (true) {
      // The broker writes the file beside its path and renames it: once it exists, it is whole.
      try {
        String text = Files.readString(ready, StandardCharsets.UTF_8);
        Matcher m = READY.matcher(text);
        if (!m.find()) {
          fail("the ready file " + ready + " says " + text);
        }
        if (Long.parseLong(m.group(2)) != process.pid()) {
          fail("the ready file names pid " + m.group(2) + ", not " + process.pid());
        }
        return new Broker(process, m.group(1), List.copyOf(flags), log, files);
      } catch (NoSuchFileException notYet) {
        // Not ready yet.
      }
      if (!process.isAlive()) {
        RUNNING.remove(process);
        fail("switchyard exited with " + process.exitValue() + " before it was ready:\n" + Files.readString(log));
      }
      if (System.nanoTime() > deadline) {
        process.destroyForcibly();
        fail("switchyard wrote no ready file within " + READY_TIMEOUT.toSeconds() + " s:\n" + Files.readString(log));
      }
      Thread.sleep(20);
    }
  }

  /** host:port of the broker. */
  String address() {
    return address;
  }

  /** Kills the broker (SIGKILL) and waits for it to exit. Idempotent. */
  void kill() {
    process.destroyForcibly();
    try {
      if (!process.waitFor(5, TimeUnit.SECONDS)) {
        fail("switchyard (pid " + process.pid() + ") did not exit after SIGKILL");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted while killing switchyard", e);
    }
    RUNNING.remove(process);
  }

  /**
   * Stops the process (SIGSTOP): connections stay open, and nothing answers. Returns once every
   * thread of it is stopped, which kill(2) does not wait for.
   */
  void pause() throws IOException, InterruptedException {
    signal("STOP");
    Path tasks = Path.of("/proc", Long.toString(process.pid()), "task");
    long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
    while (!allStopped(tasks)) {
      if (System.nanoTime() > deadline) {
        fail("switchyard (pid " + process.pid() + ") did not stop after SIGSTOP");
      }
      Thread.sleep(5);
    }
  }

  /** Whether every thread in /proc/PID/task is in state T (stopped). */
  private static boolean allStopped(Path tasks) throws IOException {
    try (var threads = Files.list(tasks)) {
      return threads.allMatch(task -> {
        try {
          String stat = Files.readString(task.resolve("stat"));
          // The state follows the command name, which is in parentheses and may hold spaces.
          return stat.charAt(stat.lastIndexOf(')') + 2) == 'T';
        } catch (IOException gone) {
          return true; // a thread that ended is not running either
        }
      });
    }
  }

  /** Lets a paused process run again (SIGCONT). */
  void resume() throws IOException, InterruptedException {
    signal("CONT");
  }

  private void signal(String name) throws IOException, InterruptedException {
    Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid())).inheritIO().start();
    if (!kill.waitFor(5, TimeUnit.SECONDS) || kill.exitValue() != 0) {
      fail("kill -" + name + " " + process.pid() + " failed");
    }
  }

  /** What the broker logged so far. */
  String log() {
    try {
      return Files.readString(log);
    } catch (IOException e) {
      return "(no log: " + e + ")";
    }
  }

  @Override
  public void close() {
    if (process.isAlive()) {
      // A paused broker must run again to die of SIGKILL promptly everywhere.
      try {
        resume();
      } catch (IOException | AssertionError ignored) {
        // It is killed anyway.
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    kill();
  }
}
