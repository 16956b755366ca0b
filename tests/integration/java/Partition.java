// Prints the partition the Java client picks for each key: Utils.toPositive(murmur2(key)) % n.
import org.apache.kafka.common.utils.Utils;
import java.nio.charset.StandardCharsets;
public class Partition {
  public static void main(String[] args) {
    int n = Integer.parseInt(args[0]);
    for (int i = 1; i < args.length; i++) {
      System.out.println(args[i] + " " + (Utils.toPositive(Utils.murmur2(args[i].getBytes(StandardCharsets.UTF_8))) % n));
    }
  }
}
