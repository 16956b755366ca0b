// Dead letters written by spring-kafka itself, for tests that compare kafkaboot's with them.
// Reads <topic> with a real Spring listener container whose listener throws, and lets
// Spring's own recoverers publish the record:
//   plain  DefaultErrorHandler + DeadLetterPublishingRecoverer, listener throws
//          IllegalStateException("boom")                                   -> <topic>-dlt
//   cause  the same, IllegalStateException("boom", new java.io.IOException("disk"))
//   deser  the value deserializer (ErrorHandlingDeserializer) fails: "bad bytes"
//   retry  @RetryableTopic(attempts = 3, fixed 100 ms back-off): <topic>-retry, then <topic>-dlt
// Exits once the dead letter is on the broker. Usage: SpringDeadLetters <bootstrap> <topic>
// <group> <mode>
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Deserializer;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.kafka.annotation.DltHandler;
import org.springframework.kafka.annotation.EnableKafkaRetryTopic;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.kafka.annotation.RetryableTopic;
import org.springframework.kafka.config.ConcurrentKafkaListenerContainerFactory;
import org.springframework.kafka.core.DefaultKafkaConsumerFactory;
import org.springframework.kafka.core.DefaultKafkaProducerFactory;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.kafka.listener.ConsumerAwareRecordRecoverer;
import org.springframework.kafka.listener.ContainerProperties;
import org.springframework.kafka.listener.DeadLetterPublishingRecoverer;
import org.springframework.kafka.listener.DefaultErrorHandler;
import org.springframework.kafka.listener.KafkaMessageListenerContainer;
import org.springframework.kafka.listener.MessageListener;
import org.springframework.kafka.support.serializer.ErrorHandlingDeserializer;
import org.springframework.retry.annotation.Backoff;
import org.springframework.scheduling.concurrent.ThreadPoolTaskScheduler;
import org.springframework.util.backoff.FixedBackOff;

public class SpringDeadLetters {
  static String bootstrap;
  static String topic;
  static String group;
  static final CountDownLatch DONE = new CountDownLatch(1);

  /** Fails on every record, like a value deserializer given bytes it cannot read. */
  public static class FailingDeserializer implements Deserializer<byte[]> {
    @Override
    public byte[] deserialize(String topic, byte[] data) {
      throw new SerializationException("bad bytes");
    }
  }

  public static void main(String[] args) throws Exception {
    bootstrap = args[0];
    topic = args[1];
    group = args[2];
    String mode = args[3];
    System.setProperty("dlt.topic", topic); // The @KafkaListener's topics and group.
    System.setProperty("dlt.group", group);
    if (mode.equals("retry")) {
      try (AnnotationConfigApplicationContext context =
          new AnnotationConfigApplicationContext(RetryConfig.class)) {
        await();
      }
    } else {
      recordListener(mode);
    }
  }

  static void await() throws InterruptedException {
    if (!DONE.await(60, TimeUnit.SECONDS)) {
      throw new IllegalStateException("no dead letter within 60 s");
    }
  }

  static Map<String, Object> consumerProps(boolean failingValues) {
    Map<String, Object> props = new HashMap<>();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
    if (failingValues) {
      props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ErrorHandlingDeserializer.class);
      props.put(ErrorHandlingDeserializer.VALUE_DESERIALIZER_CLASS, FailingDeserializer.class);
    } else {
      props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
    }
    return props;
  }

  static KafkaTemplate<byte[], byte[]> template() {
    Map<String, Object> props = new HashMap<>();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
    return new KafkaTemplate<>(new DefaultKafkaProducerFactory<byte[], byte[]>(props));
  }

  static void recordListener(String mode) throws Exception {
    KafkaTemplate<byte[], byte[]> template = template();
    DeadLetterPublishingRecoverer recoverer = new DeadLetterPublishingRecoverer(template);
    ConsumerAwareRecordRecoverer counting =
        (record, consumer, exception) -> {
          recoverer.accept(record, consumer, exception);
          DONE.countDown();
        };
    ContainerProperties properties = new ContainerProperties(topic);
    properties.setMessageListener(
        (MessageListener<byte[], byte[]>)
            record -> {
              if (mode.equals("cause")) {
                throw new IllegalStateException("boom", new java.io.IOException("disk"));
              }
              throw new IllegalStateException("boom");
            });
    DefaultKafkaConsumerFactory<byte[], byte[]> consumers =
        new DefaultKafkaConsumerFactory<>(consumerProps(mode.equals("deser")));
    KafkaMessageListenerContainer<byte[], byte[]> container =
        new KafkaMessageListenerContainer<>(consumers, properties);
    container.setCommonErrorHandler(new DefaultErrorHandler(counting, new FixedBackOff(0, 0)));
    container.start();
    try {
      await();
    } finally {
      container.stop();
      template.destroy();
    }
  }

  @Configuration(proxyBeanMethods = false)
  @EnableKafkaRetryTopic
  public static class RetryConfig {
    @Bean
    public ConcurrentKafkaListenerContainerFactory<byte[], byte[]> kafkaListenerContainerFactory() {
      ConcurrentKafkaListenerContainerFactory<byte[], byte[]> factory =
          new ConcurrentKafkaListenerContainerFactory<>();
      factory.setConsumerFactory(new DefaultKafkaConsumerFactory<>(consumerProps(false)));
      return factory;
    }

    @Bean
    public KafkaTemplate<byte[], byte[]> kafkaTemplate() {
      return template();
    }

    @Bean
    public ThreadPoolTaskScheduler taskScheduler() {
      return new ThreadPoolTaskScheduler();
    }

    @Bean
    public RetryingListener retryingListener() {
      return new RetryingListener();
    }
  }

  public static class RetryingListener {
    @RetryableTopic(attempts = "3", backoff = @Backoff(delay = 100))
    @KafkaListener(topics = "#{T(java.lang.System).getProperty('dlt.topic')}", groupId = "#{T(java.lang.System).getProperty('dlt.group')}")
    public void listen(ConsumerRecord<byte[], byte[]> record) {
      throw new IllegalStateException("boom");
    }

    @DltHandler
    public void dead(ConsumerRecord<byte[], byte[]> record) {
      DONE.countDown();
    }
  }
}
