// The closing lines of ci.sh, read from Surefire's XML reports: a "PASS Class.method" line per
// passed test, then "java client tests: N passed, M failed". Run as a single-file program
// (java ci/SurefireSummary.java target/surefire-reports), so it needs nothing but the JDK.

import java.io.File;
import java.util.ArrayList;
import java.util.List;
import javax.xml.parsers.DocumentBuilderFactory;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

public final class SurefireSummary {
  private SurefireSummary() {}

  public static void main(String[] args) throws Exception {
    File dir = new File(args.length > 0 ? args[0] : "target/surefire-reports");
    File[] reports = dir.listFiles((d, name) -> name.startsWith("TEST-") && name.endsWith(".xml"));
    List<String> passed = new ArrayList<>();
    int failed = 0;
    for (File report : reports == null ? new File[0] : reports) {
      NodeList cases = DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(report)
          .getElementsByTagName("testcase");
      for (int i = 0; i < cases.getLength(); i++) {
        Element test = (Element) cases.item(i);
        String className = test.getAttribute("classname");
        String name = className.substring(className.lastIndexOf('.') + 1) + "." + test.getAttribute("name");
        if (has(test, "failure") || has(test, "error")) {
          failed++;
          System.out.println("FAIL " + name);
        } else if (!has(test, "skipped")) {
          passed.add(name);
        }
      }
    }
    passed.stream().sorted().forEach(name -> System.out.println("PASS " + name));
    System.out.println("java client tests: " + passed.size() + " passed, " + failed + " failed");
  }

  private static boolean has(Element test, String child) {
    return test.getElementsByTagName(child).getLength() > 0;
  }
}
