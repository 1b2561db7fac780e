// What the example programs share: where the broker is.

package dev.switchyard.examples;

/** The broker address of an example: its first argument, else 127.0.0.1:50051. */
final class ExampleArgs {
  private ExampleArgs() {}

  static String address(String[] args) {
    return args.length > 0 ? args[0] : "127.0.0.1:50051";
  }
}
