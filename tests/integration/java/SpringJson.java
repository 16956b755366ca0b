// Spring Kafka's own JsonSerializer / JsonDeserializer on kafkaboot's records, both ways.
// Usage: SpringJson consume <bootstrap> <topic> <count>
//          reads with a JsonDeserializer set up as Spring Boot sets it up, from properties,
//          with NO default type (only spring.json.type.mapping: tokens order and refund for
//          this file's classes; trusted packages as by default) and prints one line per
//          record: the class it deserialized to, then the value.
//        SpringJson produce <bootstrap> <topic> mapped|plain
//          writes Order(1), Refund(2), Order(3) with a JsonSerializer (type headers on, as by
//          default), the header being the token (mapped) or the Java class name (plain).
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.springframework.kafka.support.serializer.JsonDeserializer;
import org.springframework.kafka.support.serializer.JsonSerializer;

public class SpringJson {
  public static class Order {
    public int id;
    public double amount;

    public Order() {}

    Order(int id, double amount) {
      this.id = id;
      this.amount = amount;
    }

    @Override
    public String toString() {
      return "Order(id=" + id + ", amount=" + amount + ")";
    }
  }

  public static class Refund {
    public int id;
    public String reason;

    public Refund() {}

    Refund(int id, String reason) {
      this.id = id;
      this.reason = reason;
    }

    @Override
    public String toString() {
      return "Refund(id=" + id + ", reason=" + reason + ")";
    }
  }

  static final String MAPPING =
      "order:" + Order.class.getName() + ",refund:" + Refund.class.getName();

  public static void main(String[] args) throws Exception {
    // The source launcher loads this file's classes in its own loader; Spring resolves
    // spring.json.type.mapping through the context loader, as in an application.
    Thread.currentThread().setContextClassLoader(SpringJson.class.getClassLoader());
    Properties props = new Properties();
    props.put("bootstrap.servers", args[1]);
    if (args[0].equals("consume")) {
      props.put("group.id", "spring-json-" + System.nanoTime());
      props.put("auto.offset.reset", "earliest");
      props.put("key.deserializer", StringDeserializer.class.getName());
      props.put("value.deserializer", JsonDeserializer.class.getName());
      props.put(JsonDeserializer.TYPE_MAPPINGS, MAPPING); // And no VALUE_DEFAULT_TYPE.
      int count = Integer.parseInt(args[3]);
      try (KafkaConsumer<String, Object> consumer = new KafkaConsumer<>(props)) {
        consumer.subscribe(List.of(args[2]));
        int seen = 0;
        long deadline = System.currentTimeMillis() + 60_000;
        while (seen < count && System.currentTimeMillis() < deadline) {
          for (ConsumerRecord<String, Object> record : consumer.poll(Duration.ofMillis(500))) {
            System.out.println(record.value().getClass().getName() + " " + record.value());
            seen++;
          }
        }
      }
    } else {
      props.put("key.serializer", StringSerializer.class.getName());
      props.put("value.serializer", JsonSerializer.class.getName());
      if (args[3].equals("mapped")) {
        props.put(JsonSerializer.TYPE_MAPPINGS, MAPPING);
      }
      try (KafkaProducer<String, Object> producer = new KafkaProducer<>(props)) {
        for (Object value : List.of(new Order(1, 9.5), new Refund(2, "late"), new Order(3, 1.0))) {
          producer.send(new ProducerRecord<>(args[2], 0, null, value)).get();
        }
      }
    }
  }
}
