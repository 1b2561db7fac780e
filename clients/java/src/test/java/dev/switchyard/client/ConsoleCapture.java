// Runs an example's main with System.out captured, for the tests that check what it prints.

package dev.switchyard.client;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/** The tests run one at a time, so swapping System.out for the length of one program is safe. */
final class ConsoleCapture {
  /** A program's main method. */
  interface Program {
    void main(String[] args) throws Exception;
  }

  private ConsoleCapture() {}

  /** What program printed when run with args. */
  static String run(Program program, String... args) throws Exception {
    PrintStream original = System.out;
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (PrintStream capture = new PrintStream(out, true, StandardCharsets.UTF_8)) {
      System.setOut(capture);
      program.main(args);
    } finally {
      System.setOut(original);
    }
    String printed = out.toString(StandardCharsets.UTF_8);
    original.print(printed);
    return printed;
  }
}
