// Sends each argument after the first three as one record with the Java client, so tests get
// batches in encodings aiokafka may not read (a compression codec whose library is missing).
// Usage: Produce <bootstrap> <topic> <compression.type> <value>...
import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

public class Produce {
  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.put("bootstrap.servers", args[0]);
    props.put("compression.type", args[2]);
    props.put("linger.ms", "100"); // One compressed batch for all values.
    props.put("key.serializer", StringSerializer.class.getName());
    props.put("value.serializer", StringSerializer.class.getName());
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
      for (int i = 3; i < args.length; i++) {
        producer.send(new ProducerRecord<>(args[1], 0, null, args[i]));
      }
      producer.flush();
    }
  }
}
