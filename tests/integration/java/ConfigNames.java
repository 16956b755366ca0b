import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.config.ConfigDef;
public class ConfigNames {
  static void dump(String kind, ConfigDef def) {
    for (var e : def.configKeys().entrySet()) System.out.println(kind + "\t" + e.getKey());
  }
  public static void main(String[] a) throws Exception {
    dump("consumer", ConsumerConfig.configDef());
    dump("producer", ProducerConfig.configDef());
    dump("admin", AdminClientConfig.configDef());
  }
}
